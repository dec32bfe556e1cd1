//! The scenarios `make bench` compares, and the processes behind them.

use mesh_test_harness::service_process::ServiceProcess;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    FormatterDirect,
    SdkDisabled,
    PropagationOnly,
    FullySampled,
    SampledNotExported,
    RatioSampled,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 6] = [
        Self::FormatterDirect,
        Self::SdkDisabled,
        Self::PropagationOnly,
        Self::FullySampled,
        Self::SampledNotExported,
        Self::RatioSampled,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::FormatterDirect => "formatter direct (one hop)",
            Self::SdkDisabled => "/sayHello, OTEL_SDK_DISABLED=true",
            Self::PropagationOnly => "/sayHello2 (propagation only)",
            Self::FullySampled => "/sayHello, 100 % sampled",
            Self::SampledNotExported => "/sayHello, 100 % sampled, not exported",
            Self::RatioSampled => "/sayHello, 10 % ratio sampler",
        }
    }
}

/// The processes behind the scenarios. Service names tell the sink's counts
/// apart.
pub(crate) struct Services {
    pub(crate) formatter_plain: ServiceProcess,
    pub(crate) hello_plain: ServiceProcess,
    pub(crate) formatter_full: ServiceProcess,
    pub(crate) hello_full: ServiceProcess,
    pub(crate) formatter_ratio: ServiceProcess,
    pub(crate) hello_ratio: ServiceProcess,
    pub(crate) formatter_unexported: ServiceProcess,
    pub(crate) hello_unexported: ServiceProcess,
}

impl Services {
    pub(crate) fn start(sink: &str) -> Self {
        let traced = |name: &'static str| -> Vec<(&'static str, String)> {
            vec![
                ("OTEL_SERVICE_NAME", name.to_owned()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.to_owned()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                // The SDK's default schedule, not the tests' fast one.
                ("OTEL_BSP_SCHEDULE_DELAY", "5000".to_owned()),
            ]
        };
        let spawn = |binary: &'static str, env: Vec<(&'static str, String)>| {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ServiceProcess::spawn_discarding_logs(binary, &env)
        };
        let with = |mut env: Vec<(&'static str, String)>, extra: &[(&'static str, &str)]| {
            env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            env
        };

        let plain = vec![("OTEL_SDK_DISABLED", "true".to_owned())];
        let formatter_plain = spawn("formatter-svc", plain.clone());
        let hello_plain = spawn(
            "hello-svc",
            with(plain, &[("FORMATTER_URL", &formatter_plain.url())]),
        );
        let formatter_full = spawn("formatter-svc", traced("formatter-full"));
        let hello_full = spawn(
            "hello-svc",
            with(
                traced("hello-full"),
                &[("FORMATTER_URL", &formatter_full.url())],
            ),
        );
        let formatter_ratio = spawn("formatter-svc", traced("formatter-ratio"));
        let hello_ratio = spawn(
            "hello-svc",
            with(
                traced("hello-ratio"),
                &[
                    ("FORMATTER_URL", &formatter_ratio.url()),
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
                ],
            ),
        );
        // Spans are created, sampled and ended, but no exporter runs: the
        // difference to FullySampled is the price of exporting.
        let unexported = vec![("OTEL_TRACES_EXPORTER", "none".to_owned())];
        let formatter_unexported = spawn("formatter-svc", unexported.clone());
        let hello_unexported = spawn(
            "hello-svc",
            with(
                unexported,
                &[("FORMATTER_URL", &formatter_unexported.url())],
            ),
        );
        Self {
            formatter_plain,
            hello_plain,
            formatter_full,
            hello_full,
            formatter_ratio,
            hello_ratio,
            formatter_unexported,
            hello_unexported,
        }
    }

    pub(crate) fn url(&self, scenario: Scenario) -> String {
        match scenario {
            Scenario::FormatterDirect => {
                format!("{}/formatGreeting?name=Brian", self.formatter_plain.url())
            }
            Scenario::SdkDisabled => format!("{}/sayHello/Brian", self.hello_plain.url()),
            Scenario::PropagationOnly => format!("{}/sayHello2/Brian", self.hello_plain.url()),
            Scenario::FullySampled => format!("{}/sayHello/Brian", self.hello_full.url()),
            Scenario::SampledNotExported => {
                format!("{}/sayHello/Brian", self.hello_unexported.url())
            }
            Scenario::RatioSampled => format!("{}/sayHello/Brian", self.hello_ratio.url()),
        }
    }

    /// The processes that serve `scenario`.
    pub(crate) fn serving(&self, scenario: Scenario) -> Vec<u32> {
        let pids = |processes: &[&ServiceProcess]| processes.iter().map(|p| p.pid()).collect();
        match scenario {
            Scenario::FormatterDirect => pids(&[&self.formatter_plain]),
            Scenario::SdkDisabled | Scenario::PropagationOnly => {
                pids(&[&self.hello_plain, &self.formatter_plain])
            }
            Scenario::FullySampled => pids(&[&self.hello_full, &self.formatter_full]),
            Scenario::SampledNotExported => {
                pids(&[&self.hello_unexported, &self.formatter_unexported])
            }
            Scenario::RatioSampled => pids(&[&self.hello_ratio, &self.formatter_ratio]),
        }
    }

    pub(crate) fn all(&self) -> [(&'static str, &ServiceProcess); 8] {
        [
            ("formatter (plain)", &self.formatter_plain),
            ("hello (plain)", &self.hello_plain),
            ("formatter (100 %)", &self.formatter_full),
            ("hello (100 %)", &self.hello_full),
            ("formatter (10 %)", &self.formatter_ratio),
            ("hello (10 %)", &self.hello_ratio),
            (
                "formatter (100 %, not exported)",
                &self.formatter_unexported,
            ),
            ("hello (100 %, not exported)", &self.hello_unexported),
        ]
    }
}
