//! Validation of a manifest against a CRD's OpenAPI v3 schema: the structural
//! part of what the API server checks before it stores a custom resource.
//!
//! Covered: `type` (with `x-kubernetes-int-or-string`), `properties`,
//! unknown fields (rejected unless `additionalProperties` or
//! `x-kubernetes-preserve-unknown-fields` allows them), `required`, `enum`,
//! `items`, `oneOf`/`anyOf`/`not`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `minItems`/`maxItems` and `pattern` (unanchored,
//! as the API server's ECMA-262 match is). Not covered: `format`, `default`
//! (a missing field is not filled in) and CEL `x-kubernetes-validations`.

use std::sync::OnceLock;

use regex::Regex;

use serde_json::Value;

use crate::manifests::repo_root;

/// The vendored Istio `v1` schemas, keyed `group/v1/Kind`.
pub fn istio_schemas() -> &'static serde_json::Map<String, Value> {
    static SCHEMAS: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| read_schemas("istio-v1-schemas.json"))
}

/// The vendored Gateway API v1.5.1 standard-channel `v1` schemas (Gateway,
/// HTTPRoute), keyed `group/v1/Kind`.
pub fn gateway_api_schemas() -> &'static serde_json::Map<String, Value> {
    static SCHEMAS: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| read_schemas("gateway-api-v1-schemas.json"))
}

/// The vendored schema of a custom resource, by `apiVersion/kind`, from
/// [`istio_schemas`] or [`gateway_api_schemas`].
pub fn crd_schema(api_version_kind: &str) -> Option<&'static Value> {
    istio_schemas()
        .get(api_version_kind)
        .or_else(|| gateway_api_schemas().get(api_version_kind))
}

fn read_schemas(fixture: &str) -> serde_json::Map<String, Value> {
    let path = repo_root().join("deploy-checks/fixtures").join(fixture);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is not readable: {e}", path.display()));
    let mut document: Value = serde_json::from_str(&text).expect("the vendored schemas are JSON");
    match document["schemas"].take() {
        Value::Object(schemas) => schemas,
        _ => panic!("{} has no `schemas` object", path.display()),
    }
}

/// Every way the custom resource `resource` breaks its CRD `schema`. A CRD's
/// schema describes `spec` and `status`; `apiVersion`, `kind` and `metadata`
/// are the API server's own, checked here only for a name.
pub fn validate_resource(resource: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if !resource["metadata"]["name"].is_string() {
        errors.push(".metadata.name: missing".to_owned());
    }
    let mut body = resource.clone();
    if let Some(fields) = body.as_object_mut() {
        for implicit in ["apiVersion", "kind", "metadata"] {
            fields.remove(implicit);
        }
    }
    check(&body, schema, "", &mut errors);
    errors
}

/// Every way `value` breaks `schema`, as `path: problem` lines.
pub(crate) fn validate(value: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(value, schema, "", &mut errors);
    errors
}

fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        if !type_matches(value, expected, int_or_string) {
            errors.push(format!("{at}: expected {expected}, found {value}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            errors.push(format!("{at}: {number} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            errors.push(format!("{at}: {number} is above the maximum {max}"));
        }
    }
    if let Some(text) = value.as_str() {
        check_string(text, schema, at, errors);
    }
    check_combinators(value, schema, at, errors);

    match value {
        Value::Object(fields) => check_object(fields, schema, path, at, errors),
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(format!("{at}: more than {max} items"));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(format!("{at}: fewer than {min} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(item, item_schema, &format!("{path}[{index}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn check_string(text: &str, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        errors.push(format!("{at}: longer than {max} characters"));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        errors.push(format!("{at}: shorter than {min} characters"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        // A pattern the regex crate cannot read is a finding, not a pass.
        match Regex::new(pattern) {
            Ok(regex) if regex.is_match(text) => {}
            Ok(_) => errors.push(format!("{at}: {text:?} does not match /{pattern}/")),
            Err(error) => errors.push(format!("{at}: cannot check pattern /{pattern}/: {error}")),
        }
    }
}

fn check_object(
    fields: &serde_json::Map<String, Value>,
    schema: &Value,
    path: &str,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                errors.push(format!("{at}: missing required field `{name}`"));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve_unknown =
        schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    for (name, field) in fields {
        let here = format!("{path}.{name}");
        match (properties.and_then(|p| p.get(name)), additional) {
            (Some(field_schema), _) => check(field, field_schema, &here, errors),
            (None, Some(Value::Bool(false)) | None)
                if !preserve_unknown && properties.is_some() =>
            {
                errors.push(format!("{here}: unknown field"))
            }
            (None, Some(additional @ Value::Object(_))) => check(field, additional, &here, errors),
            _ => {}
        }
    }
}

fn check_combinators(value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let passes = |branch: &Value| validate(value, branch).is_empty();
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = branches.iter().filter(|b| passes(b)).count();
        if matching != 1 {
            errors.push(format!(
                "{at}: must match exactly one `oneOf` branch, matches {matching}"
            ));
        }
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array)
        && !branches.iter().any(passes)
    {
        errors.push(format!("{at}: matches no `anyOf` branch"));
    }
    if let Some(branch) = schema.get("not")
        && passes(branch)
    {
        errors.push(format!("{at}: matches a `not` schema"));
    }
}

fn type_matches(value: &Value, expected: &str, int_or_string: bool) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string() || (int_or_string && value.is_i64()),
        "integer" => value.is_i64() || value.is_u64() || (int_or_string && value.is_string()),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn virtual_service(http_match: Value) -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "x"},
            "spec": {"hosts": ["x"], "http": [{"match": [http_match], "route": [{"destination": {"host": "x"}}]}]}
        })
    }

    fn vs_schema() -> &'static Value {
        &istio_schemas()["networking.istio.io/v1/VirtualService"]
    }

    #[test]
    fn accepts_a_valid_header_match() {
        let vs = virtual_service(json!({"headers": {"baggage": {"regex": ".*"}}}));
        assert_eq!(validate_resource(&vs, vs_schema()), Vec::<String>::new());
    }

    #[test]
    fn rejects_a_misspelled_field() {
        let vs = virtual_service(json!({"header": {"baggage": {"regex": ".*"}}}));
        let errors = validate_resource(&vs, vs_schema());
        assert!(
            errors.iter().any(|e| e.contains(".header: unknown field")),
            "{errors:?}"
        );
    }

    #[test]
    fn rejects_two_kinds_of_string_match_at_once() {
        let vs = virtual_service(json!({"headers": {"baggage": {"regex": ".*", "exact": "x"}}}));
        let errors = validate_resource(&vs, vs_schema());
        assert!(errors.iter().any(|e| e.contains("oneOf")), "{errors:?}");
    }

    fn http_route(rule: Value) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "x"},
            "spec": {"parentRefs": [{"name": "g"}], "rules": [rule]}
        })
    }

    fn route_schema() -> &'static Value {
        crd_schema("gateway.networking.k8s.io/v1/HTTPRoute").expect("vendored")
    }

    #[test]
    fn checks_gateway_api_patterns_lengths_and_enums() {
        let good = http_route(
            json!({"matches": [{"headers": [{"name": "baggage", "type": "RegularExpression", "value": ".*"}]}]}),
        );
        assert_eq!(
            validate_resource(&good, route_schema()),
            Vec::<String>::new()
        );
        let bad_name =
            http_route(json!({"matches": [{"headers": [{"name": "bag gage", "value": "x"}]}]}));
        let errors = validate_resource(&bad_name, route_schema());
        assert!(
            errors.iter().any(|e| e.contains("does not match")),
            "{errors:?}"
        );
        let bad_type = http_route(
            json!({"matches": [{"headers": [{"name": "baggage", "type": "Regex", "value": "x"}]}]}),
        );
        let errors = validate_resource(&bad_type, route_schema());
        assert!(
            errors.iter().any(|e| e.contains("is not one of")),
            "{errors:?}"
        );
        let empty_backend = http_route(json!({"backendRefs": [{"name": ""}]}));
        let errors = validate_resource(&empty_backend, route_schema());
        assert!(
            errors.iter().any(|e| e.contains("shorter than 1")),
            "{errors:?}"
        );
    }

    #[test]
    fn rejects_a_wrong_type() {
        let vs = virtual_service(json!({"headers": {"baggage": {"regex": 3}}}));
        let errors = validate_resource(&vs, vs_schema());
        assert!(
            errors.iter().any(|e| e.contains("expected string")),
            "{errors:?}"
        );
    }
}
