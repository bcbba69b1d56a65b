//! File modes: what `tern` creates in its data directory is for its own user alone, and a data
//! directory open to others is reported at start.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::TestServer;

/// Every file and directory under `dir` with a group or other permission bit, with its mode.
fn shared_entries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:03o}", path.display()));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    found
}

/// Sends one message of about `size` octets to alice over SMTP (a trusted relay in tests).
fn deliver(server: &TestServer, size: usize) {
    let mut stream = TcpStream::connect(server.addr("smtp")).expect("connect");
    let body = "x".repeat(76) + "\r\n";
    let message = format!(
        "EHLO client.test\r\nMAIL FROM:<sender@client.test>\r\nRCPT TO:<alice@{}>\r\nDATA\r\n\
         Subject: big\r\n\r\n{}.\r\nQUIT\r\n",
        server.domain,
        body.repeat(size / body.len())
    );
    stream.write_all(message.as_bytes()).expect("send");
    let mut replies = String::new();
    std::io::Read::read_to_string(&mut stream, &mut replies).expect("read replies");
    assert!(replies.contains("250 2.0.0"), "{replies}");
}

#[test]
fn the_data_directory_and_everything_in_it_is_private_and_a_shared_one_is_reported() {
    let mut server = TestServer::prepare(&["smtp"], &["alice"], "");
    server.admin_ok(&["dkim", "generate", &server.domain.clone()], None);
    server.launch();
    // Over the store's 64 KiB inline limit, so the message is a blob file.
    deliver(&server, 100_000);
    let data = server.data_dir();
    assert!(data.join("blobs").is_dir(), "blob directory");
    assert_eq!(shared_entries(&data), Vec::<String>::new());
    assert!(
        !server.log().contains("open to other users"),
        "{}",
        server.log()
    );

    server.stop();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    server.launch();
    let log = server.log();
    assert!(
        log.contains("the data directory is open to other users")
            && log.contains("tern doctor --fix")
            && log.contains(&format!("chmod -R go-rwx {}", data.display())),
        "{log}"
    );
}
