//! The deployment files users run (docker-compose.yml, deploy/Dockerfile, deploy/k8s, the example
//! herald.toml) checked as far as this machine can without a container engine: parsed, and their
//! promises verified.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    herald_testkit::repo_root()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Resolves YAML merge keys (`<<: *anchor`), which docker compose honours and yaml-rust2 leaves as is.
fn merged(yaml: &Yaml) -> Yaml {
    match yaml {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(base) = hash.get(&Yaml::String("<<".into()))
                && let Yaml::Hash(base) = merged(base)
            {
                out.extend(base);
            }
            for (k, v) in hash {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), merged(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) => s.clone(),
        Yaml::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        Yaml::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn compose_starts_each_service_only_when_nats_and_postgres_are_healthy() {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("valid YAML");
    let compose = merged(&docs[0]);
    let services = &compose["services"];

    let nats = &services["nats"];
    assert!(text(&nats["image"]).starts_with("nats:"), "NATS image");
    assert!(
        !nats["healthcheck"]["test"].is_badvalue(),
        "NATS has a healthcheck"
    );
    assert!(
        text(&nats["healthcheck"]["test"]).contains("js-enabled"),
        "the healthcheck requires JetStream"
    );
    let nats_conf = read("deploy/nats.conf");
    assert!(
        nats_conf.contains("jetstream"),
        "deploy/nats.conf enables JetStream"
    );
    assert!(text(&nats["command"]).contains("/etc/nats/nats.conf"));
    // One server holds every stream, so its acknowledgement (ingest's 202) must mean on disk:
    // `sync_interval: always`, which nats-server reads from 2.10 on.
    let jetstream_block = nats_conf
        .split("jetstream {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_default();
    assert!(
        jetstream_block
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .any(|line| line == "sync_interval: always"),
        "deploy/nats.conf syncs every JetStream write: {jetstream_block}"
    );
    let tag = text(&nats["image"]);
    let version: Vec<u32> = tag
        .trim_start_matches("nats:")
        .split(['-', '.'])
        .take(2)
        .map(|part| part.parse().unwrap_or(0))
        .collect();
    assert!(
        version.as_slice() >= [2, 10].as_slice(),
        "the compose NATS image ({tag}) reads sync_interval (2.10 or later)"
    );

    let postgres = &services["postgres"];
    assert!(text(&postgres["image"]).starts_with("postgres:"));
    assert!(text(&postgres["healthcheck"]["test"]).contains("pg_isready"));

    for service in ["ingest", "scoring", "spotlight", "notify"] {
        let s = &services[service];
        assert!(!s.is_badvalue(), "{service} is defined");
        assert_eq!(
            text(&s["build"]["dockerfile"]),
            "deploy/Dockerfile",
            "{service}"
        );
        assert_eq!(
            text(&s["build"]["args"]["SERVICE"]),
            format!("herald-{service}"),
            "{service}"
        );
        for dependency in ["nats", "postgres"] {
            assert_eq!(
                text(&s["depends_on"][dependency]["condition"]),
                "service_healthy",
                "{service} must wait for a healthy {dependency}"
            );
        }
        assert!(
            text(&s["healthcheck"]["test"]).contains("herald-healthcheck"),
            "{service} healthcheck"
        );
        assert!(
            text(&s["volumes"]).contains("/etc/herald/herald.toml"),
            "{service} reads herald.toml"
        );
        assert_eq!(
            text(&s["environment"]["HERALD_NATS__URL"]),
            "nats://nats:4222",
            "{service} reaches NATS by its compose name"
        );
    }
    // Every file compose mounts exists.
    for (name, service) in services.as_hash().into_iter().flatten() {
        for volume in service["volumes"].as_vec().into_iter().flatten() {
            let volume = text(volume);
            if let Some(local) = volume.strip_prefix("./") {
                let local = local.split(':').next().unwrap_or_default();
                assert!(
                    root().join(local).exists(),
                    "{}: {local} is mounted but missing",
                    text(name)
                );
            }
        }
    }
}

#[test]
fn the_dockerfile_is_multi_stage_parameterised_and_non_root() {
    let dockerfile = read("deploy/Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage build");
    assert!(
        dockerfile.contains("ARG SERVICE"),
        "parameterised by SERVICE"
    );
    assert!(
        dockerfile.contains("--bin \"${SERVICE}\""),
        "builds the chosen binary"
    );
    assert!(dockerfile.contains("--locked"), "uses Cargo.lock");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "runs as {user}"
    );
    let healthcheck = root().join("deploy/healthcheck.sh");
    assert!(healthcheck.exists());
    // Every binary the compose file and the manifests name is a real target of the workspace.
    let cargo = read("Cargo.toml");
    for service in ["ingest", "scoring", "spotlight", "notify"] {
        assert!(cargo.contains(&format!("services/{service}")));
        let manifest = read(&format!("services/{service}/Cargo.toml"));
        assert!(manifest.contains(&format!("name = \"herald-{service}\"")));
    }
}

#[test]
fn kubernetes_manifests_probe_health_and_run_unprivileged() {
    let kustomization =
        YamlLoader::load_from_str(&read("deploy/kustomization.yaml")).expect("YAML");
    let k = &kustomization[0];
    for resource in k["resources"].as_vec().into_iter().flatten() {
        let path = Path::new("deploy").join(text(resource));
        assert!(
            root().join(&path).exists(),
            "{} is listed but missing",
            path.display()
        );
    }
    for file in k["configMapGenerator"][0]["files"]
        .as_vec()
        .into_iter()
        .flatten()
    {
        assert!(root().join("deploy").join(text(file)).exists());
    }
    for service in ["ingest", "scoring", "spotlight", "notify"] {
        let docs =
            YamlLoader::load_from_str(&read(&format!("deploy/k8s/{service}.yaml"))).expect("YAML");
        let deployment = docs
            .iter()
            .find(|d| text(&d["kind"]) == "Deployment")
            .expect("a Deployment");
        let spec = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{service}"
        );
        let container = &spec["containers"][0];
        assert_eq!(
            text(&container["readinessProbe"]["httpGet"]["path"]),
            "/readyz",
            "{service}"
        );
        assert_eq!(
            text(&container["livenessProbe"]["httpGet"]["path"]),
            "/healthz",
            "{service}"
        );
        assert_eq!(
            text(&container["env"][0]["value"]),
            "/etc/herald/herald.toml"
        );
        assert!(
            docs.iter().any(|d| text(&d["kind"]) == "Service"),
            "{service} has a Service"
        );
    }
}

/// The Deployment names of the base manifests.
fn deployments() -> Vec<String> {
    ["ingest", "scoring", "spotlight", "notify"]
        .iter()
        .flat_map(|service| {
            YamlLoader::load_from_str(&read(&format!("deploy/k8s/{service}.yaml"))).expect("YAML")
        })
        .filter(|d| text(&d["kind"]) == "Deployment")
        .map(|d| text(&d["metadata"]["name"]))
        .collect()
}

#[test]
fn keda_scales_each_consumer_service_on_its_own_consumer_lag() {
    use herald_events::{ConsumerSpec, StreamFamily};
    let docs = YamlLoader::load_from_str(&read("deploy/k8s/scaling/keda.yaml")).expect("KEDA YAML");
    let deployments = deployments();
    let expected = [
        (
            "herald-scoring",
            StreamFamily::Events,
            ConsumerSpec::scoring(),
        ),
        (
            "herald-spotlight",
            StreamFamily::Wins,
            ConsumerSpec::spotlight(),
        ),
        (
            "herald-notify",
            StreamFamily::Announcements,
            ConsumerSpec::notify(),
        ),
    ];
    assert_eq!(
        docs.len(),
        expected.len(),
        "one ScaledObject per consumer service"
    );
    for (target, family, consumer) in expected {
        let scaled = docs
            .iter()
            .find(|d| text(&d["spec"]["scaleTargetRef"]["name"]) == target)
            .unwrap_or_else(|| panic!("no ScaledObject for {target}"));
        assert_eq!(text(&scaled["apiVersion"]), "keda.sh/v1alpha1");
        assert_eq!(text(&scaled["kind"]), "ScaledObject");
        assert!(
            deployments.contains(&target.to_string()),
            "{target} is deployed"
        );
        assert!(
            scaled["spec"]["minReplicaCount"]
                .as_i64()
                .unwrap_or_default()
                >= 1,
            "{target} keeps a replica for its scheduled work"
        );
        assert!(
            scaled["spec"]["maxReplicaCount"]
                .as_i64()
                .unwrap_or_default()
                > scaled["spec"]["minReplicaCount"]
                    .as_i64()
                    .unwrap_or_default()
        );
        let trigger = &scaled["spec"]["triggers"][0];
        assert_eq!(text(&trigger["type"]), "nats-jetstream");
        let metadata = &trigger["metadata"];
        assert_eq!(text(&metadata["stream"]), family.stream_name(), "{target}");
        assert_eq!(text(&metadata["consumer"]), consumer.durable, "{target}");
        assert!(text(&metadata["natsServerMonitoringEndpoint"]).ends_with(":8222"));
        assert!(text(&metadata["lagThreshold"]).parse::<u64>().is_ok());
    }
}

#[test]
fn the_migration_job_runs_herald_migrate_with_the_services_configuration() {
    let job = &YamlLoader::load_from_str(&read("deploy/k8s/migrate-job.yaml")).expect("YAML")[0];
    assert_eq!(text(&job["kind"]), "Job");
    let spec = &job["spec"]["template"]["spec"];
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let container = &spec["containers"][0];
    assert_eq!(text(&container["args"][0]), "migrate");
    let image = text(&container["image"]);
    assert!(
        image.contains("/herald:") && !image.ends_with(":latest"),
        "{image}"
    );
    assert_eq!(
        text(&container["envFrom"][0]["secretRef"]["name"]),
        "herald-secrets",
        "the services' secrets"
    );
    assert_eq!(
        text(&container["env"][0]["value"]),
        "/etc/herald/herald.toml"
    );
    assert!(!text(&container["resources"]["limits"]["memory"]).is_empty());
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let kustomization = read("deploy/kustomization.yaml");
    assert!(
        kustomization.contains("k8s/migrate-job.yaml"),
        "{kustomization}"
    );
}

#[test]
fn postgres_and_nats_are_replicated_three_times_with_pinned_images() {
    let cnpg = &YamlLoader::load_from_str(&read("deploy/k8s/postgres/cnpg-cluster.yaml"))
        .expect("CloudNativePG YAML")[0];
    assert_eq!(text(&cnpg["apiVersion"]), "postgresql.cnpg.io/v1");
    assert_eq!(text(&cnpg["kind"]), "Cluster");
    assert!(cnpg["spec"]["instances"].as_i64().unwrap_or_default() >= 3);
    assert_eq!(
        text(&cnpg["spec"]["bootstrap"]["initdb"]["database"]),
        "herald"
    );
    let image = text(&cnpg["spec"]["imageName"]);
    assert!(
        image.contains(':') && !image.ends_with(":latest"),
        "{image}"
    );
    assert!(!text(&cnpg["spec"]["resources"]["limits"]["memory"]).is_empty());

    let nats = &YamlLoader::load_from_str(&read("deploy/helm/nats-values.yaml"))
        .expect("NATS values YAML")[0];
    assert_eq!(nats["config"]["cluster"]["enabled"].as_bool(), Some(true));
    assert_eq!(nats["config"]["cluster"]["replicas"].as_i64(), Some(3));
    assert_eq!(nats["config"]["jetstream"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        nats["config"]["jetstream"]["fileStore"]["pvc"]["enabled"].as_bool(),
        Some(true),
        "JetStream on persistent volumes"
    );
    assert!(
        nats["config"]["merge"]["max_payload"]
            .as_i64()
            .unwrap_or_default()
            >= 8 * 1024 * 1024,
        "Herald's 8 MB messages fit"
    );
    assert_eq!(nats["config"]["monitor"]["port"].as_i64(), Some(8222));
    let tag = text(&nats["container"]["image"]["tag"]);
    assert!(!tag.is_empty() && tag != "latest", "{tag}");
}

#[test]
// figment's test helper fixes the closure's error type.
#[allow(clippy::result_large_err)]
fn the_example_configuration_loads_in_every_service() {
    let config = root().join("deploy/herald.toml");
    figment::Jail::expect_with(|jail| {
        for (name, value) in [
            ("SERVICENOW_WEBHOOK_SECRET", "s1"),
            ("CLOUDEVENTS_WEBHOOK_SECRET", "s2"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/X",
            ),
            ("BI_WEBHOOK_URL", "https://bi.example/hooks/herald"),
            (
                "BI_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            ("HERALD_READ_TOKEN", "read-token-for-the-test"),
            ("HERALD_ADMIN_TOKEN", "admin-token-for-the-test"),
        ] {
            jail.set_env(name, value);
        }
        let loader =
            herald_runtime::ConfigLoader::load(Some(&config)).map_err(|e| e.to_string())?;
        let ingest = herald_ingest::IngestConfig::load(&loader).map_err(|e| e.to_string())?;
        assert_eq!(
            ingest.shared.catalog.services().len(),
            6,
            "the catalog path resolves next to the file"
        );
        assert_eq!(ingest.sources["servicenow"].keys().secrets.len(), 1);
        // Listening on every address as deployed, the doors are locked.
        let auth = herald_runtime::Auth::from_config(
            &ingest.shared.auth,
            ([0, 0, 0, 0], 8080).into(),
            ([0, 0, 0, 0], 9090).into(),
        )
        .map_err(|e| e.to_string())?;
        assert!(
            auth.enforced(),
            "the deployed configuration requires tokens"
        );
        herald_scoring::ScoringConfig::load(&loader).map_err(|e| e.to_string())?;
        herald_spotlight::SpotlightConfig::load(&loader).map_err(|e| e.to_string())?;
        let notify = herald_notify::NotifyConfig::load(&loader).map_err(|e| e.to_string())?;
        assert_eq!(notify.notify.routes.len(), 2);
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn a_missing_secret_is_reported_by_name() {
    let config = root().join("deploy/herald.toml");
    figment::Jail::expect_with(|jail| {
        jail.set_env("HERALD_READ_TOKEN", "read-token-for-the-test");
        jail.set_env("HERALD_ADMIN_TOKEN", "admin-token-for-the-test");
        let loader =
            herald_runtime::ConfigLoader::load(Some(&config)).map_err(|e| e.to_string())?;
        let error = herald_ingest::IngestConfig::load(&loader).expect_err("secrets unset");
        let message = error.to_string();
        assert!(message.contains("_WEBHOOK_SECRET is not set"), "{message}");
        assert!(message.contains("deploy/herald.toml"), "{message}");
        Ok(())
    });
}

#[test]
fn the_readme_shows_the_example_configuration_as_it_is() {
    let readme = read("README.md");
    let config = read("deploy/herald.toml");
    let start = readme
        .find("```toml\n")
        .expect("a toml block in the README")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    assert_eq!(
        &readme[start..end],
        config,
        "README's herald.toml differs from deploy/herald.toml"
    );
}

/// The observability profile: a collector passing traces to a trace viewer, Prometheus scraping
/// every service where compose serves it (with the read token /metrics asks for), and Grafana
/// provisioned with Herald's dashboard; none of it starts without the profile.
#[test]
fn compose_has_an_observability_profile_wired_to_every_service() {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("valid YAML");
    let compose = merged(&docs[0]);
    let services = &compose["services"];
    for name in ["otel-collector", "jaeger", "prometheus", "grafana"] {
        let service = &services[name];
        assert!(!service.is_badvalue(), "{name} is defined");
        assert_eq!(text(&service["profiles"]), "observability", "{name}");
        let image = text(&service["image"]);
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name} pins its image: {image}"
        );
    }
    // Traces are exported only when asked for, so a plain `docker compose up` logs no failed export.
    let env = &services["ingest"]["environment"];
    assert_eq!(
        text(&env["HERALD_TELEMETRY__OTLP_ENDPOINT"]),
        "${HERALD_OTLP_ENDPOINT:-}"
    );
    let collector = YamlLoader::load_from_str(&read("deploy/otel-collector.yaml"))
        .expect("valid collector YAML");
    let pipeline = &collector[0]["service"]["pipelines"]["traces"];
    assert!(text(&pipeline["exporters"]).contains("otlp/jaeger"));
    assert_eq!(
        text(&collector[0]["exporters"]["otlp/jaeger"]["endpoint"]),
        "jaeger:4317"
    );

    // Prometheus scrapes each service's HTTP port as deploy/herald.toml sets it, with the token
    // compose gives the services.
    let prometheus =
        YamlLoader::load_from_str(&read("deploy/prometheus.yml")).expect("valid Prometheus YAML");
    let job = &prometheus[0]["scrape_configs"][0];
    assert_eq!(
        text(&job["authorization"]["credentials"]),
        text(&env["HERALD_READ_TOKEN"])
    );
    let targets = text(&job["static_configs"]);
    let config: toml::Table = toml::from_str(&read("deploy/herald.toml")).expect("valid TOML");
    for service in ["ingest", "scoring", "spotlight", "notify"] {
        let addr = config[service]["http_addr"].as_str().unwrap_or_default();
        let port = addr.rsplit(':').next().unwrap_or_default();
        assert!(
            targets.contains(&format!("{service}:{port}")),
            "Prometheus scrapes {service}:{port}: {targets}"
        );
    }

    // Grafana: the provisioned datasource and the dashboard mounted where the provider looks.
    let grafana = text(&services["grafana"]["volumes"]);
    assert!(grafana.contains("./deploy/grafana/herald.json:/var/lib/grafana/dashboards/"));
    let provider =
        YamlLoader::load_from_str(&read("deploy/grafana/provisioning/dashboards/herald.yaml"))
            .expect("valid provider YAML");
    assert_eq!(
        text(&provider[0]["providers"][0]["options"]["path"]),
        "/var/lib/grafana/dashboards"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/herald.json")).expect("valid dashboard JSON");
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let graphs: Vec<_> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(graphs.len() >= 8, "{} panels", graphs.len());
    for panel in graphs {
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{} queries something", panel["title"]);
        assert!(
            targets
                .iter()
                .all(|t| t["expr"].as_str().is_some_and(|e| e.contains("herald_"))),
            "{}",
            panel["title"]
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
    }
}

/// The Kubernetes manifests against the API's own schemas (kubernetes-validate, strict: an
/// unknown field fails too). The custom resources (KEDA, CloudNativePG) have no schema there and
/// are checked by the tests above. The validator is shown to refuse a broken Deployment first.
#[test]
fn kubernetes_manifests_pass_the_api_schemas() {
    let python = std::env::var("HERALD_PYTHON").unwrap_or_else(|_| "python3".into());
    let validate = |files: &[PathBuf]| {
        std::process::Command::new(&python)
            .args(["-m", "kubernetes_validate", "--strict", "--no-warn"])
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
    };
    let probe = validate(&[]);
    assert!(
        !String::from_utf8_lossy(&probe.stderr).contains("No module named"),
        "kubernetes-validate is needed: `{python} -m pip install kubernetes-validate` (scripts/test installs it)"
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let broken = dir.path().join("broken.yaml");
    let deployment = read("deploy/k8s/ingest.yaml");
    let first = deployment
        .split("\n---")
        .find(|d| d.contains("kind: Deployment"))
        .expect("a Deployment in ingest.yaml");
    std::fs::write(&broken, first.replacen("spec:", "spec:\n  replicass: 2", 1))
        .expect("a temporary file");
    let refused = validate(&[broken]);
    assert!(
        !refused.status.success(),
        "a Deployment with an unknown field is refused: {}",
        String::from_utf8_lossy(&refused.stdout)
    );

    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .expect("deploy/k8s")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 6, "{manifests:?}");
    let run = validate(&manifests);
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for kind in [
        "deployment/herald-ingest",
        "job/herald-migrate",
        "service/herald-notify",
    ] {
        assert!(
            out.contains(&format!("passed for resource {kind}")),
            "{out}"
        );
    }
}
