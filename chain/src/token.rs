//! The node API token, kept out of every Debug/Display/log line.

use std::fmt;

/// A Lotus/Venus API token. Its `Debug` and `Display` print `***`, so it can sit inside structs
/// that are logged or formatted into errors without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token; surrounding whitespace (a trailing newline from a Secret file) is dropped.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into().trim().to_owned())
    }

    /// The value for an `Authorization` header. Only the HTTP layer should call this.
    pub fn bearer_header(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `header` (an `Authorization` header value) carries this token.
    pub fn matches_header(&self, header: &str) -> bool {
        header.strip_prefix("Bearer ").is_some_and(|t| t == self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_formats_its_value() {
        let token = ApiToken::new("eyJhbGciOiJIUzI1NiJ9.secret-value\n");
        assert_eq!(format!("{token:?}"), "***");
        assert_eq!(format!("{token}"), "***");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: ApiToken,
        }
        let holder = format!("{:?}", Holder { token: token.clone() });
        assert!(!holder.contains("secret-value"), "{holder}");
        assert_eq!(token.bearer_header(), "Bearer eyJhbGciOiJIUzI1NiJ9.secret-value");
        assert!(token.matches_header("Bearer eyJhbGciOiJIUzI1NiJ9.secret-value"));
        assert!(!token.matches_header("Bearer other"));
    }
}
