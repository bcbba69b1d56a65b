//! Reading a new password without putting it on the command line.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, bail};
use tern_common::Secret;

/// The password from `file` (its first line), else a hidden prompt on a terminal (asked
/// twice), else the first line of standard input.
pub fn read(file: Option<&Path>) -> anyhow::Result<Secret> {
    let password = if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read password file {}", file.display()))?;
        first_line(&text)
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read password")?;
        let again =
            rpassword::prompt_password("Repeat password: ").context("cannot read password")?;
        if first != again {
            bail!("the passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read password from standard input")?;
        first_line(&line)
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(Secret::new(password))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// A fresh random password: 20 characters from a 56-symbol alphabet without look-alikes
/// (about 116 bits), drawn without modulo bias.
pub fn generate() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // The largest multiple of the alphabet size below 256: bytes at or above it are redrawn.
    const LIMIT: u8 = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::with_capacity(20);
    let mut bytes = [0u8; 32];
    while password.len() < 20 {
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
        password.extend(
            bytes
                .iter()
                .filter(|b| **b < LIMIT)
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .take(20 - password.len()),
        );
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = super::generate().unwrap();
        let b = super::generate().unwrap();
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn password_file_first_line_is_used() {
        assert_eq!(super::first_line("s3cret\nignored\n"), "s3cret");
        assert_eq!(super::first_line(""), "");
    }
}
