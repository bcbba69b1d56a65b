//! `tern doctor` through the real binary: a data directory opened to other users (a restore
//! or an install script with another umask) is reported with what to do, `--fix` restricts
//! it and says what it did, the server that runs on it meanwhile keeps serving, and a clean
//! installation passes.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::TestServer;
use support::wire::Wire;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_data_directory_open_to_others_is_reported_then_fixed_while_the_server_runs() {
    let server = TestServer::start_with(&["imap"], &["alice"], "");
    let data = server.data_dir();
    let out = server.admin(&["doctor"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no problems found"));

    let db = data.join("tern.db");
    chmod(&data, 0o755);
    chmod(&db, 0o644);
    let out = server.admin(&["doctor"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("PROBLEM"), "{stdout}");
    assert!(stdout.contains("tern doctor --fix"), "{stdout}");
    assert!(
        stdout.contains(&format!("644 {}", db.display())),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 problem found"));
    // Reporting changes nothing.
    assert_eq!(mode(&db), 0o644);

    let out = server.admin(&["doctor", "--fix"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("fixed"), "{stdout}");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert!(
        server
            .admin_ok(&["doctor"], None)
            .contains("no problems found")
    );

    // The server was not disturbed.
    let mut wire = Wire::connect(server.addr("imap"));
    assert!(wire.line().starts_with("* OK"));
}
