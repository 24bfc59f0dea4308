//! The commands of the `blog` binary: serve (the default), publish one event,
//! load posts, and the container health check. `main.rs` only parses the
//! command line and calls [`run`].

use std::process::ExitCode;

use crate::adapters::open_transport;
use crate::cli::{Cli, Command, LoadArgs, PublishCommand, TraceArgs};
use crate::configuration::Settings;
use crate::startup::{registered_workers, Application};
use crate::telemetry::{self, SpanExport};
use crate::transport::OutgoingMessage;

/// Runs what the command line asks for; the exit code says how it went
/// (2: a configuration error, named; 1: the command failed).
pub fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref(), cli.flags.as_layer()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("blog: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // The setting was checked at load; building the exporter can still fail.
            let export = match settings.otlp_endpoint().ok().flatten().map(SpanExport::to).transpose() {
                Ok(export) => export,
                Err(e) => {
                    eprintln!("blog: configuration error: {}", blog_actors::redact::urls_in(&format!("{e:#}")));
                    return ExitCode::from(2);
                }
            };
            telemetry::init(telemetry::subscriber(settings.log_format, "info", std::io::stdout, export.as_ref()));
            let served = actix_web::rt::System::new().block_on(serve(settings));
            // Outside the runtime: the exporter's last batch goes out before the process exits.
            if let Some(export) = export {
                export.shutdown();
            }
            served
        }
        Command::Publish { event, trace } => {
            // A one-shot command keeps stdout for its answer.
            telemetry::init(telemetry::subscriber(settings.log_format, "warn", std::io::stderr, None));
            actix_web::rt::System::new().block_on(publish(settings, event, trace))
        }
        Command::Load(args) => {
            telemetry::init(telemetry::subscriber(settings.log_format, "warn", std::io::stderr, None));
            actix_web::rt::System::new().block_on(load(settings, args))
        }
        Command::Healthcheck => match crate::healthcheck::is_ready(settings.http_addr) {
            Ok(true) => Ok(()),
            Ok(false) => Err(anyhow::anyhow!("not ready")),
            Err(e) => Err(anyhow::anyhow!(e)),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, and never a credential: library errors may quote a URL.
            eprintln!("blog: {}", blog_actors::redact::urls_in(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings).await?.run_until_stopped().await
}

async fn publish(settings: Settings, event: PublishCommand, trace: TraceArgs) -> anyhow::Result<()> {
    let (routing_key, body) = event.message()?;
    let trace = trace.context()?;
    let transport = open_transport(&settings, registered_workers()).await?;
    let message_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).and_then(|id| id.parse().ok()))
        .unwrap_or_else(uuid::Uuid::new_v4);
    let entry = OutgoingMessage { message_id, routing_key, body, correlation_id: None, trace };
    let published = transport.publish(std::slice::from_ref(&entry)).await;
    transport.close().await;
    published?;
    println!("{message_id}");
    Ok(())
}

async fn load(settings: Settings, args: LoadArgs) -> anyhow::Result<()> {
    if let (Some(count), Some(path)) = (args.synthetic, &args.write_jsonl) {
        crate::load::write_jsonl(&args, count, path)?;
        println!("wrote {count} synthetic posts to {}", path.display());
        return Ok(());
    }
    let report = crate::load::run(&settings, args).await?;
    println!("{}", report.summary());
    match report.stopped_at {
        Some(bad) => Err(anyhow::anyhow!("{bad}; the load stopped there (--on-error skip goes past such lines)")),
        None => Ok(()),
    }
}
