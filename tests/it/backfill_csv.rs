//! `herald backfill` of a ServiceNow CSV list export (header row, references as display values, a
//! quoted field with a comma, rows of two tables) into `herald up`: the summary counts every row
//! rightly, each outcome becomes a win that `herald explain` finds by its number, the rows that are
//! not outcomes earn nothing, and a second run finds everything already there.

use crate::{
    backfill::{herald_cli, run},
    support::{SECRET, standalone::Standalone},
};

/// A list export as ServiceNow writes it (`…/incident_list.do?CSV` with the columns chosen):
/// display values for references, UTC times, quotes around fields that need them.
const EXPORT: &str = "\
sys_id,sys_mod_count,sys_class_name,number,short_description,state,priority,opened_at,resolved_at,closed_at,business_service,cmdb_ci,assignment_group,assigned_to,resolved_by,closed_by,caller_id,close_code,made_sla,sla_due,work_start,work_end,reassignment_count,reopen_count
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a01,9,incident,INC0061001,\"RF scanners cannot confirm picks, DC Venlo\",6,1,2025-02-11 06:02:00,2025-02-11 07:14:00,,Warehouse Management,wms-rf-gateway,Platform & SRE,Kwame Mensah,Kwame Mensah,,Noor Haddad,Solution provided,true,2025-02-11 10:02:00,,,1,0
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a02,7,incident,INC0061002,VPN gateway rejects logins for remote depots,6,2,2025-02-12 08:30:00,2025-02-12 11:05:00,,Remote Access (VPN),fw-edge-ams-01,Network Operations,Grace Kim,Grace Kim,,Lars Smit,Solution provided,true,2025-02-12 16:30:00,,,0,0
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a03,6,incident,INC0061003,Outlook cannot connect for the Tilburg planners,6,3,2025-02-13 09:00:00,2025-02-13 15:20:00,,Workplace & Collaboration,,Workplace Technology,Daniel Brooks,Daniel Brooks,,Eva Jansen,Solution provided,true,2025-02-16 09:00:00,,,0,0
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a04,3,incident,INC0061004,Label printer queue stuck at DC Tilburg,2,3,2025-02-14 07:45:00,,,Warehouse Management,,Platform & SRE,Ingrid Lindqvist,,,Omar Haddad,,true,2025-02-17 07:45:00,,,0,0
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a05,4,incident,INC0061005,Duplicate of INC0061002,8,2,2025-02-12 08:41:00,,,Remote Access (VPN),,Network Operations,,,,Femke Visser,,true,,,,0,0
6c0e3f1a9b2d4e5f8a7b6c5d4e3f2a06,31,change_request,CHG0031420,Shipping Portal release: blue/green cut-over,3,3,2025-02-10 10:15:00,,2025-02-15 09:30:00,Customer Shipping Portal,shipping-portal-prod,Platform & SRE,Rahul Iyer,,Rahul Iyer,,successful,true,,2025-02-14 21:00:00,2025-02-14 22:40:00,0,0
";

/// The incidents the export resolves, each a win. The change row is an outcome too (accepted, so
/// read as a `change_request` from its `sys_class_name`: as an incident in state 3 it would not be
/// published); whether it earns anything is the value model's business, not the import's.
const OUTCOMES: [(&str, &str); 3] = [
    ("INC0061001", "incident_resolved"),
    ("INC0061002", "incident_resolved"),
    ("INC0061003", "incident_resolved"),
];
const NOT_OUTCOMES: [&str; 2] = ["INC0061004", "INC0061005"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servicenow_csv_export_backfills_into_wins_explain_finds() -> anyhow::Result<()> {
    let herald = Standalone::start().await?;
    let work = tempfile::tempdir()?;
    let export = work.path().join("incidents.csv");
    std::fs::write(&export, EXPORT)?;
    let file = export.display().to_string();
    let args = [
        "--json",
        "backfill",
        "--source",
        "servicenow",
        file.as_str(),
        "--secret",
        SECRET,
        "--url",
        herald.grpc.as_str(),
    ];

    let (summary, _) = run(&args).await?;
    assert_eq!(summary["rows"].as_u64(), Some(6), "{summary}");
    assert_eq!(summary["accepted"].as_u64(), Some(4), "{summary}");
    assert_eq!(summary["not_published"].as_u64(), Some(2), "{summary}");
    assert_eq!(summary["duplicates"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["rejected"].as_u64(), Some(0), "{summary}");

    herald.wait_settled().await?;
    for (number, kind) in OUTCOMES {
        let output = herald_cli(&["explain", number, "--url", &herald.grpc])?
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "explain {number}: {}\n{text}\n{}",
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            text.contains(&format!("for {number} (servicenow, {kind})")),
            "{text}"
        );
    }
    // The P1 names its service and the person who restored it, both given as display values.
    let p1 = herald_cli(&["explain", "INC0061001", "--url", &herald.grpc])?
        .output()
        .await?;
    let p1 = String::from_utf8_lossy(&p1.stdout);
    assert!(p1.contains("Warehouse Management"), "{p1}");
    assert!(p1.contains("Kwame Mensah"), "{p1}");
    for number in NOT_OUTCOMES {
        let output = herald_cli(&["explain", number, "--url", &herald.grpc])?
            .output()
            .await?;
        assert!(
            !output.status.success(),
            "{number} is not an outcome, yet explain found a win: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    // A second run of the same export finds every outcome already there.
    let (again, _) = run(&args).await?;
    assert_eq!(again["rows"].as_u64(), Some(6), "{again}");
    assert_eq!(again["accepted"].as_u64(), Some(0), "{again}");
    assert_eq!(again["duplicates"].as_u64(), Some(4), "{again}");
    assert_eq!(again["not_published"].as_u64(), Some(2), "{again}");
    Ok(())
}
