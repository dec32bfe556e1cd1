//! The two greetings of the book's formatter service.

use clap::ValueEnum;

/// A version of the formatter, and so of its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatterVersion {
    /// `Hello, puny human NAME! Morbo asks: how do you like running on Kubernetes?`
    V1,
    /// `Good news, NAME! If anyone needs me I'll be in the Angry Dome!`
    V2,
}

impl FormatterVersion {
    /// The version as Kubernetes labels and `service.version` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }

    /// The greeting template, with `{name}` where the name goes.
    pub fn template(self) -> &'static str {
        match self {
            Self::V1 => {
                "Hello, puny human {name}! Morbo asks: how do you like running on Kubernetes?"
            }
            Self::V2 => "Good news, {name}! If anyone needs me I'll be in the Angry Dome!",
        }
    }

    /// The greeting for `name`.
    pub fn greet(self, name: &str) -> String {
        self.template().replacen("{name}", name, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_as_the_book_does() {
        assert_eq!(
            FormatterVersion::V1.greet("Brian"),
            "Hello, puny human Brian! Morbo asks: how do you like running on Kubernetes?"
        );
        assert_eq!(
            FormatterVersion::V2.greet("Brian"),
            "Good news, Brian! If anyone needs me I'll be in the Angry Dome!"
        );
    }

    #[test]
    fn a_name_that_looks_like_the_placeholder_is_not_expanded_again() {
        assert_eq!(
            FormatterVersion::V2.greet("{name}"),
            "Good news, {name}! If anyone needs me I'll be in the Angry Dome!"
        );
    }
}
