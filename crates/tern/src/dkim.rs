//! `tern dkim generate|show`: DKIM keys in `<data_dir>/dkim/<domain>/` and their DNS records.

use anyhow::Context as _;

use crate::cli::{DkimCommand, GlobalArgs};
use crate::settings;

pub fn run(global: &GlobalArgs, cmd: DkimCommand) -> anyhow::Result<()> {
    let config = settings::load_as_owner(global)?;
    let (records, verb) = match cmd {
        DkimCommand::Generate { domain, selector } => {
            let selector = selector.unwrap_or_else(|| config.mail_auth.dkim_selector.clone());
            // The same rule the configuration applies to `dkim_selector`: one DNS label.
            if selector.is_empty()
                || selector.len() > 50
                || selector.starts_with('-')
                || !selector
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                anyhow::bail!("invalid selector {selector:?}: use letters, digits and hyphens");
            }
            let records = tern_delivery::dkim::generate_keys(&config.data_dir, &domain, &selector)
                .with_context(|| format!("cannot create DKIM keys for {domain}"))?;
            (records, "created")
        }
        DkimCommand::Show { domain } => (
            tern_delivery::dkim::records(&config.data_dir, &domain)?,
            "existing",
        ),
    };
    eprintln!("# DNS TXT records for the {verb} DKIM keys; publish both (RSA-2048 and Ed25519).");
    eprintln!("# Restart `tern serve` to start signing with new keys.");
    for record in records {
        println!("{record}");
    }
    Ok(())
}
