//! The shim's command line: runc's (or crun's), with ocinet's own flags taken out. Callers
//! (podman, containerd, users) pass runc's syntax unchanged, so this parser only finds what the
//! shim needs (the command, the bundle, the container id) and keeps every other word as it is.

use std::path::PathBuf;

/// Global flags of runc and crun that take a value in the next word (unless written `--f=v`).
const GLOBAL_VALUE_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "log-level",
    "criu",
    "rootless",
    "cgroup-manager",
];

/// Flags of `create`/`run` that take a value in the next word.
const CREATE_VALUE_FLAGS: &[&str] = &[
    "bundle",
    "b",
    "console-socket",
    "pid-file",
    "preserve-fds",
    "config",
    "f",
];

/// The shim's own commands (none is a runc or crun command).
pub const ADMIN_COMMANDS: &[&str] = &["ls", "inspect", "networks", "gc", "logs", "reload"];

/// ocinet's flags, accepted before the command and never passed to the runtime.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShimFlags {
    pub runtime_path: Option<PathBuf>,
    pub ocinet_root: Option<PathBuf>,
    pub ocinet_config_dir: Option<PathBuf>,
}

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub flags: ShimFlags,
    /// The runtime's arguments, ocinet's flags removed, in their order.
    pub runtime_args: Vec<String>,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create` or `run`: the config may need rewriting first.
    Create {
        bundle: Option<PathBuf>,
        /// crun's `--config`: a config file other than `<bundle>/config.json`.
        config: Option<PathBuf>,
        id: Option<String>,
    },
    /// `delete`: clean up after the runtime.
    Delete { id: Option<String> },
    /// One of the shim's own commands, with its arguments.
    Admin { name: String, args: Vec<String> },
    /// `--help`, `-h` or `help` before any command, or no words at all: ocinet's help, then
    /// the runtime's.
    Help,
    /// `--version` or `-v` before any command: ocinet's version, then the runtime's.
    Version,
    /// Anything else: straight to the runtime.
    PassThrough,
}

/// Splits `--flag=value` into its parts; single-dash spellings (`-root`) are Go's and runc's too.
fn flag_name(word: &str) -> Option<(&str, Option<&str>)> {
    let body = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    if body.is_empty() {
        return None;
    }
    Some(match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    })
}

pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut flags = ShimFlags::default();
    let mut runtime_args = Vec::new();
    let mut words = args.iter().peekable();
    let mut command_word = None;
    while let Some(word) = words.next() {
        let Some((name, inline)) = flag_name(word) else {
            command_word = Some(word.clone());
            break;
        };
        let mut value = |flag: &str| -> Result<String, String> {
            inline
                .map(str::to_string)
                .or_else(|| words.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match name {
            // runc's own spellings of these, single dash included; crun's too.
            "help" | "h" => return Ok(special(flags, Command::Help)),
            "version" | "v" => return Ok(special(flags, Command::Version)),
            "runtime-path" => flags.runtime_path = Some(value("--runtime-path")?.into()),
            "ocinet-root" => flags.ocinet_root = Some(value("--ocinet-root")?.into()),
            "ocinet-config-dir" => {
                flags.ocinet_config_dir = Some(value("--ocinet-config-dir")?.into())
            }
            _ => {
                runtime_args.push(word.clone());
                if inline.is_none() && GLOBAL_VALUE_FLAGS.contains(&name) {
                    if let Some(v) = words.next() {
                        runtime_args.push(v.clone());
                    }
                }
            }
        }
    }
    let Some(command_word) = command_word else {
        // Nothing for the runtime to do: a person trying the shim out.
        if runtime_args.is_empty() {
            return Ok(special(flags, Command::Help));
        }
        return Ok(Invocation {
            flags,
            runtime_args,
            command: Command::PassThrough,
        });
    };
    let rest: Vec<String> = words.cloned().collect();
    let command = match command_word.as_str() {
        // `help ls` is ls's help; `help create` and the like are the runtime's.
        "help" => match rest.first() {
            None => return Ok(special(flags, Command::Help)),
            Some(topic) if ADMIN_COMMANDS.contains(&topic.as_str()) => Command::Admin {
                name: topic.clone(),
                args: vec!["--help".to_string()],
            },
            Some(_) => Command::PassThrough,
        },
        "create" | "run" => parse_create(&rest),
        "delete" => Command::Delete {
            id: positionals(&rest, &[]).into_iter().next(),
        },
        name if ADMIN_COMMANDS.contains(&name) => Command::Admin {
            name: name.to_string(),
            args: rest.clone(),
        },
        _ => Command::PassThrough,
    };
    runtime_args.push(command_word);
    runtime_args.extend(rest);
    Ok(Invocation {
        flags,
        runtime_args,
        command,
    })
}

/// An invocation answered by the shim alone: the runtime gets no arguments.
fn special(flags: ShimFlags, command: Command) -> Invocation {
    Invocation {
        flags,
        runtime_args: Vec::new(),
        command,
    }
}

fn parse_create(rest: &[String]) -> Command {
    let mut bundle = None;
    let mut config = None;
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        let Some((name, inline)) = flag_name(word) else {
            continue;
        };
        let takes_value = CREATE_VALUE_FLAGS.contains(&name);
        let value = match inline {
            Some(v) => Some(v.to_string()),
            None if takes_value => words.next().cloned(),
            None => None,
        };
        match name {
            "bundle" | "b" => bundle = value.map(PathBuf::from),
            "config" | "f" => config = value.map(PathBuf::from),
            _ => {}
        }
    }
    Command::Create {
        bundle,
        config,
        id: positionals(rest, CREATE_VALUE_FLAGS).into_iter().next(),
    }
}

/// The words that are neither flags nor flag values.
fn positionals(rest: &[String], value_flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        match flag_name(word) {
            Some((name, None)) if value_flags.contains(&name) => {
                words.next();
            }
            Some(_) => {}
            None => out.push(word.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn podman_create_line() {
        let inv = parse(&words(
            "--root /run/runc --log /x/log.json --log-format json --systemd-cgroup create --bundle /b --pid-file /b/pid c1",
        ))
        .unwrap();
        assert_eq!(
            inv.command,
            Command::Create {
                bundle: Some("/b".into()),
                config: None,
                id: Some("c1".into())
            }
        );
        assert_eq!(inv.runtime_args.len(), 13);
    }

    #[test]
    fn shim_flags_are_taken_out() {
        let inv = parse(&words(
            "--runtime-path /usr/bin/crun --ocinet-root=/r --root /run/x run -d -b=/b c2",
        ))
        .unwrap();
        assert_eq!(inv.flags.runtime_path, Some("/usr/bin/crun".into()));
        assert_eq!(inv.flags.ocinet_root, Some("/r".into()));
        assert_eq!(inv.runtime_args, words("--root /run/x run -d -b=/b c2"));
        assert_eq!(
            inv.command,
            Command::Create {
                bundle: Some("/b".into()),
                config: None,
                id: Some("c2".into())
            }
        );
    }

    #[test]
    fn bundle_defaults_to_none_and_crun_config() {
        let inv = parse(&words("run --config /c.json c3")).unwrap();
        assert_eq!(
            inv.command,
            Command::Create {
                bundle: None,
                config: Some("/c.json".into()),
                id: Some("c3".into())
            }
        );
    }

    #[test]
    fn delete_and_others() {
        let inv = parse(&words("--root /r delete --force c4")).unwrap();
        assert_eq!(
            inv.command,
            Command::Delete {
                id: Some("c4".into())
            }
        );
        assert_eq!(
            parse(&words("state c4")).unwrap().command,
            Command::PassThrough
        );
        assert_eq!(
            parse(&words("help create")).unwrap().command,
            Command::PassThrough
        );
        assert_eq!(
            parse(&words("ls --format json")).unwrap().command,
            Command::Admin {
                name: "ls".into(),
                args: words("--format json")
            }
        );
    }

    #[test]
    fn help_and_version_words() {
        for line in [
            "",
            "--help",
            "-h",
            "-help",
            "help",
            "--root /r --help",
            "--runtime-path /x",
        ] {
            let inv = parse(&words(line)).unwrap();
            assert_eq!(inv.command, Command::Help, "{line:?}");
            assert!(inv.runtime_args.is_empty(), "{line:?}");
        }
        let inv = parse(&words("--runtime-path /usr/bin/crun -h")).unwrap();
        assert_eq!(inv.flags.runtime_path, Some("/usr/bin/crun".into()));
        for line in ["--version", "-v", "--ocinet-root /r -v"] {
            assert_eq!(parse(&words(line)).unwrap().command, Command::Version);
        }
        assert_eq!(
            parse(&words("help ls")).unwrap().command,
            Command::Admin {
                name: "ls".into(),
                args: words("--help")
            }
        );
        // A command's own --help is the runtime's, or the admin command's.
        assert_eq!(
            parse(&words("state --help")).unwrap().command,
            Command::PassThrough
        );
        assert_eq!(
            parse(&words("ls -h")).unwrap().command,
            Command::Admin {
                name: "ls".into(),
                args: words("-h")
            }
        );
        // Only runtime flags, no command: the runtime decides.
        assert_eq!(
            parse(&words("--root /r")).unwrap().command,
            Command::PassThrough
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        assert!(parse(&words("--runtime-path")).is_err());
    }
}
