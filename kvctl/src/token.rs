//! `kvctl token create` and `kvctl token inspect`: minting access tokens from a secrets
//! file and showing what a token says. Both run locally; no node is contacted.
//!
//! The token format (claims, HS256, secrets list) is `edgekv_proto::token`'s, the same code
//! the node verifies with, so a token kvctl mints is one every node with the same secrets
//! accepts.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use edgekv_proto::Key;
use edgekv_proto::token::{self, Claims, ScopeClaim, Secrets, TokenError, Unverified};
use serde_json::{Value as Json, json};

use crate::output::print_json;
use crate::{Failure, Output, usage};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a token signed with the first secret of --secret-file; prints the token.
    ///
    /// Each --prefix gets the access of --read and --write; --admin allows membership,
    /// keyspace, fault and full-scan status operations (and no key access by itself). A
    /// token needs at least one --prefix or --admin.
    Create {
        /// The secrets file the nodes verify with (`KEY_ID SECRET` a line; the first signs).
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// Who holds the token: named in every refusal and in the node's logs.
        #[arg(long)]
        subject: String,
        /// A key prefix the token covers (the prefix key and every key under it):
        /// '["users"]', `users/42`, or '[]' for every key. Repeatable.
        #[arg(long, value_name = "KEY")]
        prefix: Vec<String>,
        /// The prefixes may be read (get, list, watch, atomic checks).
        #[arg(long)]
        read: bool,
        /// The prefixes may be written (set, delete, sum, every atomic mutation).
        #[arg(long)]
        write: bool,
        /// How long the token is valid, e.g. 15m, 1h, 30d.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Allow admin operations.
        #[arg(long)]
        admin: bool,
    },
    /// Show a token's claims and expiry. Without --secret-file the token is decoded but not
    /// verified (anyone can write a token that decodes); with it, it is verified as a node
    /// would, and a token that fails exits 3 with the reason.
    Inspect {
        /// The token; `-` reads it from stdin; default: the --token flag or EDGEKV_TOKEN.
        #[arg(value_name = "TOKEN")]
        jwt: Option<String>,
        /// Verify the signature and expiry against this secrets file.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
}

/// A token command with its arguments checked and its secrets read.
pub enum Plan {
    Create {
        request: CreateRequest,
        secrets: Secrets,
    },
    Inspect {
        jwt: Option<String>,
        secrets: Option<Secrets>,
    },
}

/// What `token create` was asked for, before the clock is read.
#[derive(Debug, PartialEq)]
pub struct CreateRequest {
    subject: String,
    scope: Vec<ScopeClaim>,
    admin: bool,
    ttl: Duration,
}

impl Plan {
    pub fn new(command: TokenCommand) -> Result<Self, Failure> {
        Ok(match command {
            TokenCommand::Create {
                secret_file,
                subject,
                prefix,
                read,
                write,
                ttl,
                admin,
            } => {
                let request = CreateRequest::new(subject, &prefix, read, write, ttl, admin)?;
                Plan::Create {
                    request,
                    secrets: read_secrets(&secret_file)?,
                }
            }
            TokenCommand::Inspect { jwt, secret_file } => Plan::Inspect {
                jwt,
                secrets: secret_file.as_deref().map(read_secrets).transpose()?,
            },
        })
    }

    /// Runs the command; `global_token` is the --token flag (or EDGEKV_TOKEN), which
    /// `inspect` shows when it is given no TOKEN.
    pub fn execute(self, global_token: Option<&str>, output: Output) -> Result<(), Failure> {
        let now = unix_now();
        let mut out = std::io::stdout().lock();
        match self {
            Plan::Create { request, secrets } => {
                let claims = request.claims(now);
                let minted = token::sign(&claims, &secrets).map_err(|e| failure(e.to_string()))?;
                match output {
                    Output::Json => print_json(
                        &mut out,
                        &json!({
                            "token": minted,
                            "key_id": secrets.signing_key_id(),
                            "claims": claims,
                            "expires_at": rfc3339(claims.exp),
                        }),
                    ),
                    Output::Table => print_line(&mut out, &minted),
                }
            }
            Plan::Inspect { jwt, secrets } => {
                let text = match jwt {
                    Some(dash) if dash == "-" => read_stdin()?,
                    Some(text) => text,
                    None => global_token
                        .map(str::to_string)
                        .ok_or_else(|| usage("give a TOKEN, `-` for stdin, or --token / EDGEKV_TOKEN"))?,
                };
                let text = text.trim();
                let decoded = token::decode_unverified(text).map_err(|e| usage(format!("TOKEN: {e}")))?;
                if let Some(secrets) = &secrets {
                    token::verify(text, secrets, now)
                        .map_err(|e| failure(format!("the token does not verify: {e}")))?;
                }
                let report = inspection(&decoded, secrets.is_some(), now);
                match output {
                    Output::Json => print_json(&mut out, &report.json),
                    Output::Table => {
                        for (name, value) in report.rows {
                            print_line(&mut out, &format!("{name:<11} {value}"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl CreateRequest {
    /// Checks the arguments of `token create`: every refusal is a usage error.
    pub fn new(
        subject: String,
        prefixes: &[String],
        read: bool,
        write: bool,
        ttl: Duration,
        admin: bool,
    ) -> Result<Self, Failure> {
        if subject.trim().is_empty() {
            return Err(usage("--subject must not be empty"));
        }
        if ttl.is_zero() {
            return Err(usage("--ttl must be greater than zero"));
        }
        if prefixes.is_empty() && (read || write) {
            return Err(usage(
                "--read and --write apply to --prefix; give at least one --prefix",
            ));
        }
        if !prefixes.is_empty() && !read && !write {
            return Err(usage("say what the --prefix scopes allow: --read, --write or both"));
        }
        if prefixes.is_empty() && !admin {
            return Err(usage(
                "a token needs at least one --prefix (with --read and/or --write) or --admin",
            ));
        }
        let scope = prefixes
            .iter()
            .map(|text| {
                // `Key::parse` refuses an empty key in the slash form; `[]` is every key.
                let key = Key::parse(text).map_err(|e| usage(format!("--prefix {e}")))?;
                Ok(ScopeClaim {
                    prefix: key.to_json(),
                    read,
                    write,
                })
            })
            .collect::<Result<_, Failure>>()?;
        Ok(Self {
            subject,
            scope,
            admin,
            ttl,
        })
    }

    /// The claims of a token minted at `now` (unix seconds). A TTL with a fraction of a
    /// second is rounded up: the token lives at least as long as asked.
    pub fn claims(&self, now: u64) -> Claims {
        let ttl_secs = self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0);
        Claims {
            sub: self.subject.clone(),
            exp: now.saturating_add(ttl_secs),
            iat: now,
            scope: self.scope.clone(),
            admin: self.admin,
        }
    }
}

/// What `inspect` prints: rows for the table and one JSON document.
struct Inspection {
    rows: Vec<(&'static str, String)>,
    json: Json,
}

fn inspection(decoded: &Unverified, verified: bool, now: u64) -> Inspection {
    let claims = &decoded.claims;
    let expired = now >= claims.exp;
    let expiry = if expired {
        format!(
            "{} (expired {} ago)",
            rfc3339(claims.exp),
            humantime::format_duration(Duration::from_secs(now - claims.exp))
        )
    } else {
        format!(
            "{} (in {})",
            rfc3339(claims.exp),
            humantime::format_duration(Duration::from_secs(claims.exp - now))
        )
    };
    let mut rows = vec![
        (
            "verified",
            if verified {
                "yes (signature and expiry checked against the secrets file)".to_string()
            } else {
                "no (decoded only; pass --secret-file to verify)".to_string()
            },
        ),
        ("subject", claims.sub.clone()),
        ("algorithm", decoded.algorithm.clone()),
        ("key_id", decoded.key_id.clone().unwrap_or_else(|| "-".into())),
        ("issued_at", rfc3339(claims.iat)),
        ("expires_at", expiry),
        ("admin", claims.admin.to_string()),
    ];
    if claims.scope.is_empty() {
        rows.push(("scope", "-".into()));
    }
    for (index, scope) in claims.scope.iter().enumerate() {
        let access = match (scope.read, scope.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "none",
        };
        rows.push((
            if index == 0 { "scope" } else { "" },
            format!("{} {access}", scope.prefix),
        ));
    }
    let json = json!({
        "verified": verified,
        "algorithm": decoded.algorithm,
        "key_id": decoded.key_id,
        "claims": claims,
        "expires_at": rfc3339(claims.exp),
        "expired": expired,
    });
    Inspection { rows, json }
}

fn read_secrets(path: &std::path::Path) -> Result<Secrets, Failure> {
    Secrets::read_file(path).map_err(|e: TokenError| failure(e.to_string()))
}

fn read_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| failure(format!("cannot read the token from stdin: {e}")))?;
    Ok(text)
}

fn failure(message: String) -> Failure {
    Failure { code: 3, message }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn rfc3339(unix_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_secs)).to_string()
}

fn print_line(out: &mut impl std::io::Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn request(prefixes: &[&str], read: bool, write: bool, admin: bool) -> Result<CreateRequest, Failure> {
        let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        CreateRequest::new("ci".into(), &prefixes, read, write, Duration::from_secs(3600), admin)
    }

    /// `Failure` has no `Debug` (main prints its message), so `unwrap` is spelled out.
    fn accepted(result: Result<CreateRequest, Failure>) -> CreateRequest {
        result.unwrap_or_else(|failure| panic!("refused: {}", failure.message))
    }

    fn usage_message(result: Result<CreateRequest, Failure>) -> String {
        match result {
            Err(failure) => {
                assert_eq!(failure.code, 2, "{}", failure.message);
                failure.message
            }
            Ok(request) => panic!("expected a usage error, got {request:?}"),
        }
    }

    #[test]
    fn every_prefix_gets_the_read_and_write_flags() {
        let request = accepted(request(&[r#"["users"]"#, "logs/eu", "[]"], true, false, false));
        let claims = request.claims(1_000);
        assert_eq!(claims.sub, "ci");
        assert_eq!((claims.iat, claims.exp), (1_000, 4_600));
        assert!(!claims.admin);
        let prefixes: Vec<&Json> = claims.scope.iter().map(|s| &s.prefix).collect();
        assert_eq!(prefixes, [&json!(["users"]), &json!(["logs", "eu"]), &json!([])]);
        assert!(claims.scope.iter().all(|s| s.read && !s.write));
    }

    #[test]
    fn an_admin_token_needs_no_prefix() {
        let claims = accepted(request(&[], false, false, true)).claims(0);
        assert!(claims.admin && claims.scope.is_empty());
        let both = accepted(request(&["a"], true, true, true)).claims(0);
        assert!(both.admin && both.scope[0].read && both.scope[0].write);
    }

    #[test]
    fn pointless_or_unbounded_tokens_are_usage_errors() {
        assert!(usage_message(request(&[], false, false, false)).contains("--prefix"));
        assert!(usage_message(request(&[], true, false, false)).contains("--prefix"));
        assert!(usage_message(request(&["users"], false, false, false)).contains("--read"));
        assert!(usage_message(request(&["[1, "], true, false, false)).contains("--prefix"));
        assert!(usage_message(request(&[""], true, false, false)).contains("--prefix"));
        let no_subject = CreateRequest::new(" ".into(), &[], false, false, Duration::from_secs(1), true);
        assert!(usage_message(no_subject).contains("--subject"));
        let no_ttl = CreateRequest::new("ci".into(), &[], false, false, Duration::ZERO, true);
        assert!(usage_message(no_ttl).contains("--ttl"));
    }

    #[test]
    fn a_fractional_ttl_rounds_up() {
        let prefixes = vec!["a".to_string()];
        let request = CreateRequest::new("ci".into(), &prefixes, true, false, Duration::from_millis(1500), false);
        assert_eq!(accepted(request).claims(10).exp, 12);
    }

    #[test]
    fn minted_tokens_verify_and_inspect() {
        let secrets = Secrets::parse(&format!("k9 {SECRET}")).unwrap();
        let claims = accepted(request(&["users"], true, true, false)).claims(unix_now());
        let minted = token::sign(&claims, &secrets).unwrap();
        let grant = token::verify(&minted, &secrets, unix_now()).unwrap();
        assert!(grant.can_write(&Key::parse("users/1").unwrap().encode()));

        let decoded = token::decode_unverified(&minted).unwrap();
        let report = inspection(&decoded, false, claims.iat);
        assert_eq!(report.json["verified"], json!(false));
        assert_eq!(report.json["key_id"], json!("k9"));
        assert_eq!(report.json["claims"]["sub"], json!("ci"));
        assert_eq!(report.json["expired"], json!(false));
        let expiry = &report.rows.iter().find(|(name, _)| *name == "expires_at").unwrap().1;
        assert!(expiry.ends_with("(in 1h)"), "{expiry}");
        assert!(report.rows.contains(&("scope", r#"["users"] read,write"#.to_string())));
        let later = inspection(&decoded, true, claims.exp + 60);
        assert_eq!(later.json["expired"], json!(true));
        assert_eq!(later.json["verified"], json!(true));
    }
}
