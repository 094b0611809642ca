//! The `kluis` command line, run as a user would run it.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test on setup errors"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use domain::ports::VenueRepository;

fn kluis(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kluis"));
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("KLUIS_") {
            command.env_remove(key);
        }
    }
    command
        .env("KLUIS_LOG", "info")
        .env(
            "KLUIS_POLICY_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"),
        )
        .env_remove("RUST_LOG");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn open_store(dir: &Path) -> store::Store {
    let url = store::DatabaseUrl::parse(&format!("sqlite://{}", dir.join("kluis.db").display()))
        .expect("url");
    let keys = api::keys::read_key_file(&dir.join(api::keys::DEVELOPMENT_KEY_FILE))
        .expect("development key");
    let key_store =
        store::DatabaseUrl::parse(&format!("sqlite://{}", dir.join("kluis-keys.db").display()))
            .expect("url");
    store::Store::connect(
        &url,
        &key_store,
        1,
        domain::crypto::SharedKeyRing::new(keys),
    )
    .expect("connect")
}

#[test]
fn schema_prints_the_committed_sdl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path()).arg("schema").output().expect("run");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("read");
    assert_eq!(String::from_utf8_lossy(&output.stdout), committed);
}

#[test]
fn an_invalid_setting_prints_one_line_naming_the_key_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (key, value, named) in [
        ("KLUIS_ENV", "staging", "`env`"),
        ("KLUIS_DATABASE_URL", "mysql://x", "`database_url`"),
        ("KLUIS_BIND", "everywhere", "`bind`"),
        ("KLUIS_POOL_SIZE", "many", "`pool_size`"),
    ] {
        let output = kluis(dir.path())
            .arg("migrate")
            .env(key, value)
            .output()
            .expect("run");
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{key}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{key}: {text}");
        assert!(text.contains(named), "{key}: {text}");
    }
    assert!(
        !dir.path().join("kluis.db").exists(),
        "a bad setting still created the database"
    );
}

#[test]
fn a_bad_setting_in_kluis_toml_is_named_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kluis.toml"), "env = \"prod\"\n").expect("write");
    let output = kluis(dir.path()).arg("migrate").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("`env`"), "{}", stderr(&output));
}

#[test]
fn a_connection_failure_shows_the_real_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path())
        .arg("migrate")
        .env(
            "KLUIS_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/nothing",
        )
        .env("KLUIS_KEY_STORE_URL", "postgres://nobody@127.0.0.1:1/keys")
        .output()
        .expect("run");
    let text = stderr(&output);
    assert!(!output.status.success());
    assert!(
        text.contains("127.0.0.1") && text.to_lowercase().contains("refused"),
        "{text}"
    );
}

#[test]
fn erasures_replay_reports_what_it_applied_and_a_postgres_database_needs_a_key_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path())
        .args(["erasures", "replay"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("applied 0 of 0 recorded erasures"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The key store is a file of its own next to the data.
    assert!(dir.path().join("kluis-keys.db").exists());
    let output = kluis(dir.path())
        .arg("migrate")
        .env("KLUIS_DATABASE_URL", "postgres://nobody@127.0.0.1:1/kluis")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`key_store_url`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path()).arg("migrate").output().expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(open_store(dir.path()).has_no_venues().expect("query"));
}

/// Runs SQL on the test's SQLite file, as someone with database access
/// but no master key.
fn tamper(dir: &Path, sql: &str) {
    use diesel::{Connection as _, RunQueryDsl as _};
    let path = dir.join("kluis.db");
    let mut connection =
        diesel::sqlite::SqliteConnection::establish(&path.display().to_string()).expect("open");
    diesel::sql_query(sql)
        .execute(&mut connection)
        .expect("tamper");
}

fn verify(dir: &Path, head: Option<&str>) -> Output {
    let mut command = kluis(dir);
    command.args(["audit", "verify"]);
    if let Some(head) = head {
        command.args(["--head", head]);
    }
    command.output().expect("run")
}

/// `kluis audit verify` prints the head it reached; given a head published
/// earlier, it fails when the newest entries were removed since, which the
/// chain alone cannot show. An edit in the middle fails it too.
#[test]
fn audit_verify_detects_a_truncated_tail_against_a_published_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let migrated = kluis(dir.path()).arg("migrate").output().expect("run");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let store = open_store(dir.path());
    for n in 1..=3 {
        store
            .audit(
                &[store::AuditEvent {
                    principal: "user:reader".to_owned(),
                    action: store::AuditAction::Read,
                    object: format!("guest:g{n}"),
                    fields: "name".to_owned(),
                    venue_id: None,
                }],
                chrono::Utc::now(),
            )
            .expect("audit");
    }
    let intact = verify(dir.path(), None);
    assert!(intact.status.success(), "{}", stderr(&intact));
    let printed = String::from_utf8_lossy(&intact.stdout).into_owned();
    let head = printed
        .split_whitespace()
        .find(|word| word.starts_with("3:"))
        .unwrap_or_else(|| panic!("no head in {printed}"))
        .to_owned();
    let against = verify(dir.path(), Some(&head));
    assert!(against.status.success(), "{}", stderr(&against));

    tamper(dir.path(), "DELETE FROM audit_objects WHERE seq = 3");
    tamper(dir.path(), "DELETE FROM audit_log WHERE seq = 3");
    let alone = verify(dir.path(), None);
    assert!(alone.status.success(), "the chain alone cannot tell");
    let truncated = verify(dir.path(), Some(&head));
    assert!(!truncated.status.success());
    assert!(
        stderr(&truncated).contains("before the published head 3"),
        "{}",
        stderr(&truncated)
    );

    tamper(
        dir.path(),
        "UPDATE audit_objects SET object = 'guest:other' WHERE seq = 1",
    );
    let edited = verify(dir.path(), None);
    assert!(!edited.status.success());
    assert!(
        stderr(&edited).contains("entry 1 was modified"),
        "{}",
        stderr(&edited)
    );

    let malformed = verify(dir.path(), Some("3:nothex"));
    assert!(!malformed.status.success());
    assert!(
        stderr(&malformed).contains("SEQ:HMAC"),
        "{}",
        stderr(&malformed)
    );
}

const VENUES: &str = r#"
[[venue]]
slug = "corner"
name = "Corner Cafe"
time_zone = "Europe/Lisbon"
[venue.opening_hours]
monday = ["08:00-16:00"]
[[venue.resource]]
slug = "t1"
name = "Table 1"
capacity = 2
[[venue.resource]]
slug = "t2"
name = "Table 2"
capacity = 4
"#;

#[test]
fn re_importing_updates_and_never_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("venues.toml");
    std::fs::write(&file, VENUES).expect("write");
    for _ in 0..2 {
        let output = kluis(dir.path())
            .args(["venue", "import", "venues.toml"])
            .output()
            .expect("run");
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let changed = VENUES.replace("Corner Cafe", "Corner Café").replace(
        "[[venue.resource]]\nslug = \"t2\"\nname = \"Table 2\"\ncapacity = 4\n",
        "",
    );
    std::fs::write(&file, changed).expect("write");
    let output = kluis(dir.path())
        .args(["venue", "import", "venues.toml"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));

    let store = open_store(dir.path());
    let venues = store.venues(None, 10).expect("venues").items;
    assert_eq!(venues.len(), 1);
    assert_eq!(venues[0].name, "Corner Café");
    let resources = store.resources(venues[0].id).expect("resources");
    assert_eq!(resources.len(), 2, "a resource was deleted or duplicated");
    let active: Vec<&str> = resources
        .iter()
        .filter(|r| r.active)
        .map(|r| r.slug.as_str())
        .collect();
    assert_eq!(active, ["t1"]);
}

#[test]
fn an_invalid_time_zone_names_file_line_and_key_and_imports_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = format!(
        "{VENUES}\n[[venue]]\nslug = \"moon\"\nname = \"Moon Base\"\ntime_zone = \"Moon/Tranquility\"\n"
    );
    std::fs::write(dir.path().join("venues.toml"), broken).expect("write");
    let output = kluis(dir.path())
        .args(["venue", "import", "venues.toml"])
        .output()
        .expect("run");
    let text = stderr(&output);
    assert!(!output.status.success());
    assert!(
        text.contains("venues.toml:20: venue[1].time_zone: `Moon/Tranquility`"),
        "{text}"
    );
    let output = kluis(dir.path()).arg("migrate").output().expect("run");
    assert!(output.status.success());
    assert!(
        open_store(dir.path()).has_no_venues().expect("query"),
        "part of the file was imported"
    );
}

/// A valid master key for production runs.
const MASTER_KEY: &str =
    "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QA==";

/// Starts `kluis serve` on a free port and returns the child and its port.
fn serve(
    dir: &Path,
    env: &str,
    master_key: Option<&str>,
) -> (
    std::process::Child,
    u16,
    Vec<String>,
    mpsc::Receiver<String>,
) {
    let mut command = kluis(dir);
    if let Some(key) = master_key {
        command
            .env("KLUIS_MASTER_KEY", key)
            .env("KLUIS_BEHIND_PROXY", "true");
    }
    let mut child = command
        .arg("serve")
        .env("KLUIS_BIND", "127.0.0.1:0")
        .env("KLUIS_ENV", env)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining even when nobody listens: a closed pipe would make
        // the server's log writes fail.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ignored = lines.send(line);
        }
    });
    let mut port = None;
    let mut startup = Vec::new();
    while port.is_none() {
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start");
        startup.push(line.clone());
        port = line
            .split("port=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
    }
    (child, port.expect("port"), startup, receiver)
}

fn try_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// GETs a path, retrying while the server's workers come up, as a load
/// balancer's probe would.
fn get(port: u16, path: &str) -> String {
    for _ in 0..100 {
        if let Ok(answer) = try_get(port, path) {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no answer from port {port}");
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait")
}

#[test]
fn serve_seeds_a_demo_venue_in_development_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, port, mut logs, more) = serve(dir.path(), "development", None);
    assert!(get(port, "/readyz").starts_with("HTTP/1.1 200"));
    let status = terminate(&mut child);
    assert!(status.success(), "{status}");
    logs.extend(more.try_iter());
    assert!(
        logs.iter().any(|l| l.contains("seeded the demo venue")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
    assert!(!open_store(dir.path()).has_no_venues().expect("query"));
}

#[test]
fn production_seeds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, port, _, _) = serve(dir.path(), "production", Some(MASTER_KEY));
    assert!(get(port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(terminate(&mut child).success());
    let url = store::DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("kluis.db").display()
    ))
    .expect("url");
    let keys = api::keys::parse_environment_keys(MASTER_KEY).expect("key");
    let key_store = store::DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("kluis-keys.db").display()
    ))
    .expect("url");
    let store = store::Store::connect(
        &url,
        &key_store,
        1,
        domain::crypto::SharedKeyRing::new(keys),
    )
    .expect("connect");
    assert!(store.has_no_venues().expect("query"));
}

#[test]
fn production_without_a_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path())
        .arg("serve")
        .env("KLUIS_ENV", "production")
        .env("KLUIS_BEHIND_PROXY", "true")
        .output()
        .expect("run");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("no master key"), "{text}");
    assert!(
        !dir.path().join("kluis.db").exists(),
        "something was written"
    );
    assert!(
        !dir.path().join("kluis.key").exists(),
        "a key was generated in production"
    );
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = kluis(dir.path())
        .arg("migrate")
        .env("KLUIS_MASTER_KEY", MASTER_KEY)
        .output()
        .expect("run");
    assert!(first.status.success(), "{}", stderr(&first));
    let database = dir.path().join("kluis.db");
    let before = std::fs::read(&database).expect("read");
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 64]);
    let output = kluis(dir.path())
        .arg("migrate")
        .env("KLUIS_MASTER_KEY", &wrong)
        .output()
        .expect("run");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("does not match this database"), "{text}");
    assert_eq!(
        text.trim_end()
            .lines()
            .filter(|l| l.starts_with("kluis:"))
            .count(),
        1,
        "{text}"
    );
    assert_eq!(
        std::fs::read(&database).expect("read"),
        before,
        "the database changed"
    );
}

#[test]
fn production_refuses_plain_http_unless_told_a_proxy_terminates_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path())
        .arg("serve")
        .env("KLUIS_ENV", "production")
        .env("KLUIS_MASTER_KEY", MASTER_KEY)
        .output()
        .expect("run");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("`tls_cert`") && text.contains("KLUIS_BEHIND_PROXY"),
        "{text}"
    );
}

#[test]
fn key_rotation_from_the_command_line_reports_progress_and_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, port, _, _) = serve(dir.path(), "development", None);
    assert!(get(port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(terminate(&mut child).success());
    let output = kluis(dir.path())
        .args(["keys", "rotate"])
        .env("KLUIS_KEY_FILE", "kluis.key")
        .output()
        .expect("run");
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("rotation finished"), "{text}");
    let keys = api::keys::read_key_file(&dir.path().join("kluis.key")).expect("key file");
    assert_eq!(keys.versions().collect::<Vec<_>>(), vec![1, 2]);
    // The same keys given through the environment cannot be rotated.
    let file = std::fs::read_to_string(dir.path().join("kluis.key")).expect("key file");
    let environment_keys: Vec<String> = file
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(version, key)| format!("{}:{}", version.trim_matches('"'), key.trim_matches('"')))
        .collect();
    let again = kluis(dir.path())
        .args(["keys", "rotate"])
        .env("KLUIS_MASTER_KEY", environment_keys.join(","))
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("needs a key file"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn key_retirement_from_the_command_line_lists_what_holds_it_up_then_removes_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("venues.toml"), VENUES).expect("write");
    let imported = kluis(dir.path())
        .args(["venue", "import", "venues.toml"])
        .output()
        .expect("run");
    assert!(imported.status.success(), "{}", stderr(&imported));
    let venue = open_store(dir.path())
        .venues(None, 1)
        .expect("venues")
        .items[0]
        .id
        .to_string();
    let created = kluis(dir.path())
        .args(["apikey", "create", "--name", "Platform", "--venue", &venue])
        .output()
        .expect("run");
    assert!(created.status.success(), "{}", stderr(&created));
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let id = domain::auth::ApiKeyToken::parse(&key).expect("valid").id;
    let with_file = |args: &[&str]| {
        kluis(dir.path())
            .args(args)
            .env("KLUIS_KEY_FILE", "kluis.key")
            .output()
            .expect("run")
    };
    let rotated = with_file(&["keys", "rotate"]);
    let text = stderr(&rotated);
    assert!(rotated.status.success(), "{text}");
    assert!(
        text.contains("API key still hashed under an older key version") && text.contains(&id),
        "the rotation did not name the API key it cannot move: {text}"
    );
    let current = with_file(&["keys", "retire", "2"]);
    assert_eq!(current.status.code(), Some(2), "{}", stderr(&current));
    assert!(
        stderr(&current).contains("is the current one"),
        "{}",
        stderr(&current)
    );
    let refused = with_file(&["keys", "retire", "1"]);
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("key version 1 is still needed"), "{text}");
    assert!(
        text.contains("api_keys: 1 live API keys") && text.contains(&id),
        "{text}"
    );
    let keys = api::keys::read_key_file(&dir.path().join("kluis.key")).expect("key file");
    assert_eq!(keys.versions().collect::<Vec<_>>(), vec![1, 2]);

    let revoked = kluis(dir.path())
        .args(["apikey", "revoke", &id])
        .output()
        .expect("run");
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let retired = with_file(&["keys", "retire", "1"]);
    assert!(retired.status.success(), "{}", stderr(&retired));
    assert!(
        stderr(&retired).contains("retired key version 1"),
        "{}",
        stderr(&retired)
    );
    let keys = api::keys::read_key_file(&dir.path().join("kluis.key")).expect("key file");
    assert_eq!(keys.versions().collect::<Vec<_>>(), vec![2]);
    // The database agrees: the next start checks the keys and goes ahead.
    let migrated = with_file(&["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let gone = with_file(&["keys", "retire", "1"]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("not in the key file"),
        "{}",
        stderr(&gone)
    );
}

#[test]
#[ignore = "needs PostgreSQL"]
fn postgres_connections_honour_sslmode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::env::var("KLUIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/kluis_test".to_owned());
    let separator = if base.contains('?') { '&' } else { '?' };
    // Verifying the server against a root certificate that does not exist
    // must fail: proof that the URL's sslmode reaches libpq. (A PostgreSQL
    // data database needs a key store of its own; it gets the same server
    // under the same sslmode, so the data database is reached first.)
    let tls = "sslmode=verify-full&sslrootcert=/nonexistent/root.crt";
    let output = kluis(dir.path())
        .arg("migrate")
        .env("KLUIS_DATABASE_URL", format!("{base}{separator}{tls}"))
        .env(
            "KLUIS_KEY_STORE_URL",
            format!("{base}{separator}{tls}&application_name=kluis-keys"),
        )
        .output()
        .expect("run");
    let text = stderr(&output).to_lowercase();
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("ssl") || text.contains("root"), "{text}");
}

#[test]
fn keys_generate_writes_a_private_key_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kluis(dir.path())
        .args(["keys", "generate", "--out", "prod.key"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let path = dir.path().join("prod.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("written")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(
        api::keys::read_key_file(&path)
            .expect("readable")
            .current_version(),
        1
    );
    let again = kluis(dir.path())
        .args(["keys", "generate", "--out", "prod.key"])
        .output()
        .expect("run");
    assert!(
        !again.status.success(),
        "an existing key file was overwritten"
    );
}

fn kluis_with_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = kluis(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("run")
}

#[test]
fn user_add_creates_the_first_admin_and_refuses_weak_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = kluis_with_stdin(
        dir.path(),
        &["user", "add", "--email", "root@example.org"],
        "1q2w3e4r5t6y\n",
    );
    assert!(!weak.status.success());
    assert!(
        stderr(&weak).contains("most common passwords"),
        "{}",
        stderr(&weak)
    );
    let added = kluis_with_stdin(
        dir.path(),
        &["user", "add", "--email", "Root@Example.org"],
        "a long admin passphrase\n",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let store = open_store(dir.path());
    let user = store
        .staff_by_email(&domain::Email::parse("email", "root@example.org").expect("an address"))
        .expect("query")
        .expect("created");
    let roles = store.roles_of(&format!("user:{}", user.id)).expect("roles");
    assert_eq!(
        (roles[0].role.as_str(), roles[0].venue.as_str()),
        ("admin", "*")
    );
    assert!(user.password_hash.expose().starts_with("$argon2id$"));
}

#[test]
fn api_keys_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("venues.toml"), VENUES).expect("write");
    let imported = kluis(dir.path())
        .args(["venue", "import", "venues.toml"])
        .output()
        .expect("run");
    assert!(imported.status.success(), "{}", stderr(&imported));
    let venue = open_store(dir.path())
        .venues(None, 1)
        .expect("venues")
        .items[0]
        .id
        .to_string();
    let created = kluis(dir.path())
        .args(["apikey", "create", "--name", "Platform", "--venue", &venue])
        .output()
        .expect("run");
    assert!(created.status.success(), "{}", stderr(&created));
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(domain::auth::ApiKeyToken::parse(&key).is_some(), "{key}");
    let id = domain::auth::ApiKeyToken::parse(&key).expect("valid").id;
    let listed = kluis(dir.path())
        .args(["apikey", "list"])
        .output()
        .expect("run");
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listing.contains(&id) && listing.contains("active"),
        "{listing}"
    );
    assert!(!listing.contains(&key[21..40]), "the secret was listed");
    let revoked = kluis(dir.path())
        .args(["apikey", "revoke", &id])
        .output()
        .expect("run");
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let listed = kluis(dir.path())
        .args(["apikey", "list"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("revoked"));
}

#[test]
fn policy_check_names_file_and_line_and_explain_shows_the_deciding_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let ok = kluis(dir.path())
        .args(["policy", "check"])
        .arg(&shipped)
        .output()
        .expect("run");
    assert!(ok.status.success(), "{}", stderr(&ok));
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::copy(shipped.join("model.conf"), broken.join("model.conf")).expect("copy");
    std::fs::write(
        broken.join("policy.csv"),
        "p, staff, Query.reservation, read\np, staff, Guest.creditCard, read\n",
    )
    .expect("write");
    let refused = kluis(dir.path())
        .args(["policy", "check"])
        .arg(&broken)
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("policy.csv:2: `Guest.creditCard` names nothing"),
        "{}",
        stderr(&refused)
    );

    let allow = kluis(dir.path())
        .args([
            "policy",
            "explain",
            "--subject",
            "anonymous",
            "--object",
            "Mutation.createReservation",
            "--action",
            "execute",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&allow.stdout).into_owned();
    assert!(
        text.starts_with("ALLOW")
            && text.contains("p, anonymous, Mutation.createReservation, execute"),
        "{text}{}",
        stderr(&allow)
    );
    let deny = kluis(dir.path())
        .args([
            "policy",
            "explain",
            "--subject",
            "anonymous",
            "--object",
            "Reservation.guestEmail",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&deny.stdout).into_owned();
    assert!(
        text.starts_with("DENY") && text.contains("deny by default"),
        "{text}"
    );
}

/// `kluis policy check` refuses every model edit that would change who may
/// do what (a second effect or matcher below the first, another effect, a
/// matcher of `true` or an altered one) and accepts the shipped model laid
/// out differently.
#[test]
fn policy_check_refuses_models_that_widen_access() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let model = std::fs::read_to_string(shipped.join("model.conf")).expect("read");
    let matcher = model
        .lines()
        .find(|line| line.starts_with("m ="))
        .expect("a matcher")
        .to_owned();
    let check = |name: &str, text: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("model.conf"), text).expect("write");
        std::fs::copy(shipped.join("policy.csv"), folder.join("policy.csv")).expect("copy");
        kluis(dir.path())
            .args(["policy", "check"])
            .arg(&folder)
            .output()
            .expect("run")
    };
    let refused = [
        (
            "duplicate-e",
            format!("{model}\n[policy_effect]\ne = !some(where (p.eft == deny))\n"),
            "duplicate `e` in [policy_effect]",
        ),
        (
            "duplicate-m",
            format!("{model}\nm = true\n"),
            "duplicate `m` in [matchers]",
        ),
        (
            "deny-effect",
            model.replace(
                "some(where (p.eft == allow))",
                "some(where (p.eft == deny))",
            ),
            "unsupported effect",
        ),
        (
            "true-matcher",
            model.replace(&matcher, "m = true"),
            "unsupported matcher",
        ),
        (
            "altered-matcher",
            model.replace(&matcher, &matcher.replace("keyMatch(r.obj, p.obj)", "true")),
            "unsupported matcher",
        ),
    ];
    for (name, text, reason) in refused {
        let output = check(name, &text);
        assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("model.conf:") && stderr(&output).contains(reason),
            "{name}: {}",
            stderr(&output)
        );
    }
    let relaid = check(
        "relaid",
        &model.replace(&matcher, &matcher.replace(" && ", " \\\n    && ")),
    );
    assert!(relaid.status.success(), "{}", stderr(&relaid));
}
