//! A catalog file changed under a running service: a valid one is put in force, a broken one is
//! refused and the one in force stays.

use std::{path::Path, time::Duration};

use herald_catalog::{Catalog, CatalogHandle, Reload};
use tokio_util::sync::CancellationToken;

fn fixture_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/catalog.toml");
    std::fs::read_to_string(path).expect("the fixture catalog")
}

fn warehouse_rate(catalog: &Catalog) -> f64 {
    catalog
        .service("svc-warehouse")
        .expect("the warehouse service")
        .loaded_hourly_rate
}

/// The fixture catalog with Warehouse Management's loaded hourly rate replaced.
fn with_warehouse_rate(text: &str, rate: f64) -> String {
    let start = text
        .find("id = \"svc-warehouse\"")
        .expect("the warehouse entry");
    let at = start + text[start..].find("loaded_hourly_rate").expect("its rate");
    let end = at + text[at..].find('\n').expect("end of line");
    format!(
        "{}loaded_hourly_rate = {rate:?}{}",
        &text[..at],
        &text[end..]
    )
}

#[test]
fn the_version_is_the_start_of_the_sha256_of_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, fixture_text())?;
    let catalog = Catalog::from_file(&path)?;
    assert_eq!(catalog.version().len(), 12);
    assert!(catalog.version().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        catalog.version(),
        Catalog::from_toml_str(&fixture_text())?.version()
    );
    let other = Catalog::from_toml_str(&with_warehouse_rate(&fixture_text(), 76.0))?;
    assert_ne!(catalog.version(), other.version());
    assert_eq!(catalog.source(), Some(path.as_path()));
    Ok(())
}

#[test]
fn a_changed_file_is_put_in_force_and_a_broken_one_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("catalog.toml");
    let original = fixture_text();
    std::fs::write(&path, &original)?;
    let handle = CatalogHandle::new(Catalog::from_file(&path)?);
    let first = handle.version();
    assert_eq!(warehouse_rate(&handle.current()), 38.0);
    assert_eq!(handle.reload(), Reload::Unchanged);

    let doubled = with_warehouse_rate(&original, 76.0);
    std::fs::write(&path, &doubled)?;
    let Reload::Reloaded { from, to } = handle.reload() else {
        panic!("the changed catalog was not reloaded");
    };
    assert_eq!(from, first);
    assert_eq!(to, handle.version());
    assert_ne!(to, first);
    assert_eq!(warehouse_rate(&handle.current()), 76.0);

    // Valid TOML that the catalog's own checks refuse, then no TOML at all.
    let inconsistent = with_warehouse_rate(&original, -1.0);
    std::fs::write(&path, &inconsistent)?;
    let Reload::Refused(refused) = handle.reload() else {
        panic!("a negative rate was accepted");
    };
    assert!(
        refused.error.contains("loaded_hourly_rate"),
        "{}",
        refused.error
    );
    assert_eq!(handle.refused(), Some(refused));
    assert_eq!(handle.version(), to, "the catalog in force stays");
    assert_eq!(warehouse_rate(&handle.current()), 76.0);
    assert_eq!(
        handle.reload(),
        Reload::Unchanged,
        "refused once, not again"
    );

    std::fs::write(&path, "[[services]\nid = ")?;
    assert!(matches!(handle.reload(), Reload::Refused(r) if r.error.contains("TOML")));
    assert_eq!(warehouse_rate(&handle.current()), 76.0);

    // Fixed: in force again, and the refusal forgotten.
    std::fs::write(&path, &original)?;
    assert!(matches!(handle.reload(), Reload::Reloaded { .. }));
    assert_eq!(handle.version(), first);
    assert_eq!(handle.refused(), None);
    Ok(())
}

#[test]
fn a_catalog_without_a_file_has_nothing_to_reload() -> anyhow::Result<()> {
    let handle = CatalogHandle::new(Catalog::default());
    assert_eq!(handle.reload(), Reload::NoFile);
    assert_eq!(handle.version(), "");
    Ok(())
}

#[tokio::test]
async fn the_watcher_picks_up_a_change_and_refuses_a_broken_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("catalog.toml");
    let original = fixture_text();
    std::fs::write(&path, &original)?;
    let handle = CatalogHandle::new(Catalog::from_file(&path)?);
    let first = handle.version();
    let mut changes = handle.subscribe();
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(
        handle
            .clone()
            .watch(Duration::from_millis(20), shutdown.clone()),
    );
    let wait = Duration::from_secs(10);

    std::fs::write(&path, with_warehouse_rate(&original, 76.0))?;
    assert!(tokio::time::timeout(wait, changes.changed()).await?);
    assert_ne!(handle.version(), first);
    assert_eq!(warehouse_rate(&handle.current()), 76.0);
    let second = handle.version();

    std::fs::write(&path, "not a catalog = [")?;
    assert!(tokio::time::timeout(wait, changes.changed()).await?);
    assert!(handle.refused().is_some());
    assert_eq!(handle.version(), second);
    assert_eq!(warehouse_rate(&handle.current()), 76.0);

    shutdown.cancel();
    tokio::time::timeout(wait, watcher).await??;
    Ok(())
}
