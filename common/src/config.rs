//! Configuration files for clap-based service configs.
//!
//! Every service takes its settings from flags, environment variables and an optional JSON file
//! named by `--config`, in that order of precedence (flags win). clap already reads flags and
//! environment; the file is folded in by turning each of its entries into a flag placed before
//! the user's own flags, but only where neither a later flag nor the matching environment
//! variable sets it.

use std::ffi::OsString;
use std::path::Path;

/// Expands `--config FILE` (or `RUNNEL_CONFIG`) into flags.
///
/// The file is a JSON object whose keys are flag names without the leading dashes
/// (`{"data-dir": "/var/lib/runnel", "log-flush-interval-ms": 500}`). `env_prefix` is the
/// services's environment prefix (`RUNNEL_`): a key whose environment variable is set is
/// skipped, because the environment outranks the file.
///
/// # Errors
/// A message naming the file when it cannot be read or is not a JSON object of scalars.
pub fn args_with_config_file(
    args: impl IntoIterator<Item = OsString>,
    env_prefix: &str,
) -> Result<Vec<OsString>, String> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut config_path = std::env::var_os(format!("{env_prefix}CONFIG"));
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    let program = iter.next().unwrap_or_else(|| OsString::from("runnel"));
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            config_path = iter.next();
        } else if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            config_path = Some(OsString::from(path));
        } else {
            rest.push(arg);
        }
    }
    let mut out = vec![program];
    if let Some(path) = config_path {
        out.extend(flags_from_file(Path::new(&path), env_prefix)?);
    }
    out.extend(rest);
    Ok(out)
}

fn flags_from_file(path: &Path, env_prefix: &str) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("config file {} is not valid JSON: {e}", path.display()))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("config file {} must hold a JSON object", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in object {
        let env_name = format!("{env_prefix}{}", key.replace('-', "_").to_uppercase());
        if std::env::var_os(&env_name).is_some() {
            continue;
        }
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "config file {}: key {key:?} must be a string, number or boolean",
                    path.display()
                ));
            }
        };
        flags.push(OsString::from(format!("--{key}={text}")));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entries_come_before_user_flags() {
        let dir = std::env::temp_dir().join(format!("runnel-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("c.json");
        std::fs::write(&file, r#"{"listen": "127.0.0.1:1", "id": 3}"#).expect("write");
        let args = [
            "broker",
            "--config",
            file.to_str().expect("utf8"),
            "--id",
            "5",
        ]
        .map(OsString::from);
        let out = args_with_config_file(args, "RUNNEL_TEST_UNSET_").expect("parse");
        let out: Vec<String> = out
            .into_iter()
            .map(|a| a.into_string().expect("utf8"))
            .collect();
        assert_eq!(out[0], "broker");
        assert!(out.contains(&"--listen=127.0.0.1:1".to_string()));
        // The user's flag comes last, so it wins over the file's.
        assert_eq!(&out[out.len() - 2..], ["--id", "5"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rejects_non_object() {
        let dir = std::env::temp_dir().join(format!("runnel-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("c.json");
        std::fs::write(&file, "[1]").expect("write");
        let args = ["broker", "--config", file.to_str().expect("utf8")].map(OsString::from);
        assert!(args_with_config_file(args, "RUNNEL_").is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
