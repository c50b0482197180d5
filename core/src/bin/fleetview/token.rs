//! The HTTP API's bearer token, shared by `fleetview serve` (which requires it) and
//! `fleetview send` (which presents it): where it comes from and how it is compared.
//!
//! A token on the command line (`--token T`) is visible to every user of the machine in `ps`
//! and stays in the shell history, so it can also come from a file (`--token-file PATH`) or
//! from the environment (`FLEETVIEW_TOKEN`). The flags win over the environment.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq as _;

/// The environment variable read when neither `--token` nor `--token-file` is given.
pub(crate) const TOKEN_ENV: &str = "FLEETVIEW_TOKEN";

/// A bearer token: printable ASCII without spaces (what an `Authorization: Bearer` header can
/// carry), compared in constant time.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    /// Whether `given` is this token. The time taken does not depend on where the first
    /// differing byte is (subtle's `ct_eq`); only the length may show, which is not secret.
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }

    /// The token's text, for a client to send.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Where the token came from (logged at start; never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `--token`: visible in `ps`.
    Flag,
    /// `--token-file PATH`.
    File(PathBuf),
    /// The `FLEETVIEW_TOKEN` environment variable.
    Env,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("--token"),
            Self::File(p) => write!(f, "--token-file {}", p.display()),
            Self::Env => f.write_str(TOKEN_ENV),
        }
    }
}

/// Why no token could be read.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The token file could not be read.
    Unreadable(PathBuf, std::io::Error),
    /// The token (after trimming surrounding whitespace, for files) is empty.
    Empty(TokenSource),
    /// A byte that an HTTP header cannot carry, at this byte offset of the token.
    BadByte(TokenSource, usize),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(p, e) => write!(f, "cannot read the token file {}: {e}", p.display()),
            Self::Empty(s) => write!(f, "the token from {s} is empty"),
            Self::BadByte(s, at) => write!(
                f,
                "the token from {s} has a space, control or non-ASCII character at byte {at}: \
                 a bearer token is printable ASCII without spaces"
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// The token from `--token`, else `--token-file`, else `env` (the value of `FLEETVIEW_TOKEN`,
/// passed in so that callers and tests choose the environment); `None` when none is given.
pub(crate) fn load(
    flag: Option<&str>,
    file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<(Token, TokenSource)>, TokenError> {
    let (text, source) = match (flag, file, env) {
        (Some(t), _, _) => (t.to_string(), TokenSource::Flag),
        (None, Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| TokenError::Unreadable(path.to_path_buf(), e))?;
            // Files end with a newline; editors add one.
            (
                text.trim().to_string(),
                TokenSource::File(path.to_path_buf()),
            )
        }
        (None, None, Some(t)) => (t, TokenSource::Env),
        (None, None, None) => return Ok(None),
    };
    if text.is_empty() {
        return Err(TokenError::Empty(source));
    }
    if let Some(at) = text.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(TokenError::BadByte(source, at));
    }
    Ok(Some((Token(text), source)))
}

/// A warning to log about how the token was given, if any: on the command line it is visible
/// in `ps`; a token file others can read is no secret.
pub(crate) fn source_warning(source: &TokenSource) -> Option<String> {
    match source {
        TokenSource::Flag => Some(format!(
            "--token is visible to every user of this machine (ps, /proc) and in the shell history: \
             prefer --token-file PATH or the {TOKEN_ENV} environment variable"
        )),
        TokenSource::File(path) => readable_by_others(path).then(|| {
            format!(
                "the token file {} can be read by other users: chmod 600 it",
                path.display()
            )
        }),
        TokenSource::Env => None,
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_file_then_env() {
        let dir = std::env::temp_dir().join(format!("fleetview-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = || Some("from-env".to_string());

        let (t, s) = load(Some("from-flag"), Some(&file), env())
            .unwrap()
            .unwrap();
        assert_eq!((t.as_str(), s), ("from-flag", TokenSource::Flag));
        let (t, s) = load(None, Some(&file), env()).unwrap().unwrap();
        assert_eq!(
            (t.as_str(), s),
            ("from-file", TokenSource::File(file.clone()))
        );
        let (t, s) = load(None, None, env()).unwrap().unwrap();
        assert_eq!((t.as_str(), s), ("from-env", TokenSource::Env));
        assert!(load(None, None, None).unwrap().is_none());

        std::fs::write(&file, "  \n").unwrap();
        let e = load(None, Some(&file), None).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        let e = load(None, Some(&dir.join("missing")), None).unwrap_err();
        assert!(e.to_string().contains("cannot read the token file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_a_header_cannot_carry_are_refused() {
        let e = load(Some("two words"), None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the token from --token has a space, control or non-ASCII character at byte 3: \
             a bearer token is printable ASCII without spaces"
        );
        assert!(load(None, None, Some("é".into())).is_err());
        assert!(load(Some(""), None, None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn warnings_for_the_command_line_and_a_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt as _;
        let file =
            std::env::temp_dir().join(format!("fleetview-token-mode-{}", std::process::id()));
        std::fs::write(&file, "t").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = source_warning(&TokenSource::File(file.clone())).unwrap();
        assert!(w.contains("can be read by other users"), "{w}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source_warning(&TokenSource::File(file.clone())), None);
        assert!(source_warning(&TokenSource::Flag).unwrap().contains("ps"));
        assert_eq!(source_warning(&TokenSource::Env), None);
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn comparison() {
        let (t, _) = load(Some("s3cret"), None, None).unwrap().unwrap();
        assert!(t.matches(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret!", b"S3cret", b"x3cret"] {
            assert!(!t.matches(wrong));
        }
        assert_eq!(format!("{t:?}"), "Token(…)");
    }
}
