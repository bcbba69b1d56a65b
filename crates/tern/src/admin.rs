//! `tern domain|user|alias`: directory administration on the configured store (`tern user
//! send-as` included).

use crate::cli::{AliasCommand, DomainCommand, GlobalArgs, SendAsCommand, UserCommand};
use crate::{password, settings};

pub async fn domain(global: &GlobalArgs, cmd: DomainCommand) -> anyhow::Result<()> {
    let directory = settings::open_directory(&settings::load_as_owner(global)?).await?;
    match cmd {
        DomainCommand::Add { name } => {
            directory.add_domain(&name).await?;
            println!("added domain {name}");
        }
        DomainCommand::List => {
            for domain in directory.domains().await? {
                match &domain.catch_all {
                    Some(target) => println!("{}\tcatch-all -> {target}", domain.name),
                    None => println!("{}", domain.name),
                }
            }
        }
        DomainCommand::Remove { name } => {
            directory.remove_domain(&name).await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

pub async fn user(global: &GlobalArgs, cmd: UserCommand) -> anyhow::Result<()> {
    let directory = settings::open_directory(&settings::load_as_owner(global)?).await?;
    match cmd {
        UserCommand::Add {
            address,
            name,
            password,
        } => {
            let secret = password::read(password.password_file.as_deref())?;
            let account = directory
                .add_user(&address, &secret, name.as_deref())
                .await?;
            println!("added user {}", account.address);
        }
        UserCommand::List { domain } => {
            for account in directory.users(domain.as_deref()).await? {
                let state = if account.disabled { "\tdisabled" } else { "" };
                match &account.display_name {
                    Some(name) => println!("{}\t{name}{state}", account.address),
                    None => println!("{}{state}", account.address),
                }
            }
        }
        UserCommand::Passwd { address, password } => {
            let secret = password::read(password.password_file.as_deref())?;
            directory.set_password(&address, &secret).await?;
            println!("changed password of {address}");
        }
        UserCommand::Disable { address } => {
            directory.set_disabled(&address, true).await?;
            println!("disabled user {address}");
        }
        UserCommand::Enable { address } => {
            directory.set_disabled(&address, false).await?;
            println!("enabled user {address}");
        }
        UserCommand::Remove { address } => {
            directory.remove_user(&address).await?;
            println!("removed user {address}");
        }
        UserCommand::SendAs(cmd) => match cmd {
            SendAsCommand::Add { account, address } => {
                directory.add_send_as(&account, &address).await?;
                println!("{account} may now send as {address}");
            }
            SendAsCommand::Remove { account, address } => {
                directory.remove_send_as(&account, &address).await?;
                println!("{account} may no longer send as {address}");
            }
            SendAsCommand::List { account } => {
                for address in directory.send_as(&account).await? {
                    println!("{address}");
                }
            }
        },
    }
    Ok(())
}

pub async fn alias(global: &GlobalArgs, cmd: AliasCommand) -> anyhow::Result<()> {
    let directory = settings::open_directory(&settings::load_as_owner(global)?).await?;
    match cmd {
        AliasCommand::Add { source, target } => {
            directory.add_alias(&source, &target).await?;
            println!("added alias {source} -> {target}");
        }
        AliasCommand::List { domain } => {
            for alias in directory.aliases(domain.as_deref()).await? {
                println!("{}\t{}", alias.source, alias.target);
            }
        }
        AliasCommand::Remove { source, target } => {
            directory.remove_alias(&source, target.as_deref()).await?;
            println!("removed alias {source}");
        }
    }
    Ok(())
}
