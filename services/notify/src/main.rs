#[tokio::main]
async fn main() -> anyhow::Result<()> {
    herald_runtime::service::main::<herald_notify::Notify>().await
}
