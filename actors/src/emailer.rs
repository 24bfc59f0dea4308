//! The emailer: mails the customer when an order is fulfilled, at most once per order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minijinja::{context, Environment};
use sha2::{Digest, Sha256};

use crate::event::{Envelope, Event, OrderFulfilled, ORDER_FULFILLED};
use crate::messages::HandlerError;
use crate::ports::{EmailLog, MailClaim, MailError, Mailer, OutgoingMail};
use crate::supervision::Worker;
use crate::worker::WorkerSpec;

const TEXT_TEMPLATE: &str = "order_fulfilled.txt";
const HTML_TEMPLATE: &str = "order_fulfilled.html";
/// A claim older than this is taken to be abandoned by a dead instance. Longer
/// than any send may take (the SMTP mailer times out well before).
pub const CLAIM_STALE_AFTER: Duration = Duration::from_secs(30);
/// Characters of the order id kept readable in a mail id; the hash makes it unique.
const MAIL_ID_SLUG_CHARS: usize = 40;
/// Hex digits of SHA-256 over the exact order id in a mail id (48 bits).
const MAIL_ID_HASH_HEX: usize = 12;

/// Sends the order notification, guarded by the email log against duplicates.
pub struct Emailer {
    /// Remembers which orders were mailed, so a redelivery sends nothing.
    log: Arc<dyn EmailLog>,
    /// .eml files or SMTP.
    mailer: Arc<dyn Mailer>,
    /// The mail templates, parsed once.
    templates: Arc<Environment<'static>>,
    /// Who holds this process's claims in the email log.
    instance: Arc<str>,
    /// Orders being mailed by this actor now: a second delivery of one waits
    /// instead of racing the first to the mail server. Entries are removed by
    /// [`OrderClaim`]'s drop, so a restart or a cancelled handler leaves none behind.
    in_progress: Arc<Mutex<HashSet<String>>>,
}

impl Emailer {
    pub fn new(log: Arc<dyn EmailLog>, mailer: Arc<dyn Mailer>, instance: &str) -> Self {
        let in_progress = Arc::default();
        Self { log, mailer, templates: Arc::new(templates()), instance: instance.into(), in_progress }
    }
}

/// The mail templates, parsed.
pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template(TEXT_TEMPLATE, include_str!("../templates/order_fulfilled.txt.j2"))
        .expect("the text template parses");
    env.add_template(HTML_TEMPLATE, include_str!("../templates/order_fulfilled.html.j2"))
        .expect("the html template parses");
    env
}

/// Renders the notification for an order.
pub fn render(templates: &Environment<'static>, order: &OrderFulfilled) -> Result<OutgoingMail, String> {
    let total_items = order
        .lines
        .iter()
        .try_fold(0u64, |sum, l| sum.checked_add(u64::from(l.quantity)))
        .ok_or("the order's quantities overflow")?;
    let ctx = context! { order_id => &order.order_id, customer => &order.customer, lines => &order.lines, total_items };
    let render = |name: &str| {
        templates
            .get_template(name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| format!("rendering {name}: {e}"))
    };
    Ok(OutgoingMail {
        message_id: mail_id(&order.order_id),
        to_name: order.customer.name.clone(),
        to_email: order.customer.email.clone(),
        subject: format!("Your order {} is on its way", order.order_id),
        text_body: render(TEXT_TEMPLATE)?,
        html_body: render(HTML_TEMPLATE)?,
    })
}

/// The order's Message-ID (without brackets), also the .eml file's name: a readable
/// slug of the id plus a hash of the exact id, so `C/1`, `C_1` and `C.1` never share one.
pub fn mail_id(order_id: &str) -> String {
    let slug: String = order_id
        .chars()
        .take(MAIL_ID_SLUG_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let digest = Sha256::digest(order_id.as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..MAIL_ID_HASH_HEX].to_owned();
    format!("order-{slug}-{hash}@blog.local")
}

/// This actor's hold on one order while its mail is handled. However the handling
/// ends — an error, a panic, a restart, the deadline, shutdown — dropping the hold
/// frees the order in this actor and, unless the mail was sent, gives up the
/// email log's claim, so no other delivery of the order waits on it.
struct OrderClaim {
    order_id: String,
    in_progress: Arc<Mutex<HashSet<String>>>,
    /// Set while the email log holds our claim and the mail is not sent.
    stored: Option<(Arc<dyn EmailLog>, Arc<str>)>,
}

impl OrderClaim {
    /// Takes the order in this actor; `None` when another delivery of it is in hand.
    fn take(in_progress: &Arc<Mutex<HashSet<String>>>, order_id: &str) -> Option<Self> {
        let mut held = in_progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.insert(order_id.to_owned())
            .then(|| Self { order_id: order_id.to_owned(), in_progress: in_progress.clone(), stored: None })
    }

    /// Gives the stored claim up now, on an ordinary failure, before the retry is scheduled.
    async fn release(&mut self) {
        if let Some((log, holder)) = self.stored.take() {
            release_stored(log, &self.order_id, &holder).await;
        }
    }
}

impl Drop for OrderClaim {
    fn drop(&mut self) {
        let mut held = self.in_progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.remove(&self.order_id);
        drop(held);
        // Dropped mid-flight (panic, deadline, restart): the release cannot be awaited here.
        if let (Some((log, holder)), Ok(runtime)) = (self.stored.take(), tokio::runtime::Handle::try_current()) {
            let order_id = std::mem::take(&mut self.order_id);
            runtime.spawn(async move { release_stored(log, &order_id, &holder).await });
        }
    }
}

async fn release_stored(log: Arc<dyn EmailLog>, order_id: &str, holder: &str) {
    if let Err(e) = log.release_order_mail(order_id, holder).await {
        // It goes stale after CLAIM_STALE_AFTER and is taken over then.
        tracing::warn!(error = %e, "could not release an order's mail claim");
    }
}

impl Worker for Emailer {
    const SPEC: &'static WorkerSpec = &WorkerSpec { name: "emailer", event_types: &[ORDER_FULFILLED], mailbox: 1024 };

    /// Mail one fulfilled order.
    fn handle(&self, _: Arc<Envelope>, event: Event) -> impl std::future::Future<Output = Result<(), HandlerError>> + 'static {
        let (log, mailer, templates) = (self.log.clone(), self.mailer.clone(), self.templates.clone());
        let (instance, in_progress) = (self.instance.clone(), self.in_progress.clone());
        async move {
            let Event::OrderFulfilled(order) = event else {
                return Err(HandlerError::Permanent("not an order event".into()));
            };
            let Some(mut claim) = OrderClaim::take(&in_progress, &order.order_id) else {
                return Err(HandlerError::Deferred("the order is being mailed by another delivery".into()));
            };
            let result = mail_once(&mut claim, &log, &*mailer, &templates, &order, &instance).await;
            if result.is_err() {
                claim.release().await;
            }
            result
        }
    }
}

/// Claims the order in the email log, sends, and records it sent.
async fn mail_once(
    claim: &mut OrderClaim,
    log: &Arc<dyn EmailLog>,
    mailer: &dyn Mailer,
    templates: &Environment<'static>,
    order: &OrderFulfilled,
    instance: &Arc<str>,
) -> Result<(), HandlerError> {
    match log.claim_order_mail(&order.order_id, instance, CLAIM_STALE_AFTER).await.map_err(HandlerError::from)? {
        MailClaim::Send => {}
        MailClaim::AlreadySent => {
            tracing::info!("order already mailed; skipping the duplicate");
            return Ok(());
        }
        MailClaim::HeldElsewhere => {
            return Err(HandlerError::Deferred("the order is being mailed by another instance".into()));
        }
    }
    claim.stored = Some((log.clone(), instance.clone()));
    let mail = render(templates, order).map_err(HandlerError::Permanent)?;
    mailer.send(&mail).await.map_err(|e| match e {
        MailError::Transient(_) => HandlerError::Unavailable(e.to_string()),
        MailError::Rejected(_) => HandlerError::Permanent(e.to_string()),
    })?;
    // Sent: from here the claim is kept, so another instance does not send it again
    // even if recording it fails (this instance's retry finds its own claim).
    claim.stored = None;
    log.mark_order_mailed(&order.order_id, &mail.to_email, &mail.message_id).await.map_err(HandlerError::from)?;
    tracing::info!(message_id = %mail.message_id, "order mail sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Customer, OrderLine};
    use proptest::prelude::*;

    fn order(order_id: &str, lines: Vec<OrderLine>) -> OrderFulfilled {
        OrderFulfilled {
            order_id: order_id.into(),
            customer: Customer { name: "Ada Lovelace".into(), email: "ada@example.com".into() },
            lines,
        }
    }

    fn line(sku: &str, name: &str, quantity: u32) -> OrderLine {
        OrderLine { sku: sku.into(), name: name.into(), quantity }
    }

    #[test]
    fn the_mail_names_the_customer_and_every_line() {
        let order = order("A-1001", vec![line("BK-1", "Analytical Engines", 2), line("BK-2", "Notes", 1)]);
        let mail = render(&templates(), &order).unwrap();
        assert!(mail.text_body.contains("Hello Ada Lovelace"));
        assert!(mail.text_body.contains("2 x Analytical Engines (BK-1)"));
        assert!(mail.text_body.contains("3 items in all"));
        assert!(mail.html_body.contains("<strong>A-1001</strong>"));
        assert!(mail.message_id.starts_with("order-A-1001-"), "{}", mail.message_id);
    }

    #[test]
    fn quantities_add_up_without_wrapping() {
        let order = order("W-1", vec![line("A", "B", u32::MAX), line("A", "B", 1)]);
        let mail = render(&templates(), &order).unwrap();
        assert!(mail.text_body.contains("4294967296 items in all"), "{}", mail.text_body);
    }

    #[test]
    fn distinct_order_ids_get_distinct_mail_ids() {
        let ids = ["C/1", "C_1", "C.1", "C 1", "Ä-9", "Ö-9", "c/1"];
        let mail_ids: HashSet<String> = ids.iter().map(|id| mail_id(id)).collect();
        assert_eq!(mail_ids.len(), ids.len(), "{mail_ids:?}");
        assert_eq!(mail_id("C/1"), mail_id("C/1"), "stable for one order");
    }

    #[test]
    fn a_mail_id_is_short_and_safe_whatever_the_order_id() {
        let id = mail_id(&"ß/..\\x".repeat(50));
        assert!(id.len() < 100, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.')), "{id}");
    }

    #[test]
    fn a_claim_frees_its_order_when_dropped() {
        let held = Arc::new(Mutex::new(HashSet::new()));
        let claim = OrderClaim::take(&held, "A-1").unwrap();
        assert!(OrderClaim::take(&held, "A-1").is_none(), "one delivery at a time");
        drop(claim);
        assert!(OrderClaim::take(&held, "A-1").is_some(), "freed by the drop");
    }

    proptest! {
        #[test]
        fn rendering_never_panics_and_keeps_ids_injective(a in "\\PC{1,64}", b in "\\PC{1,64}", q in 1u32..) {
            let mail = render(&templates(), &order(&a, vec![line("S", "N", q)])).unwrap();
            let expected = format!("{} x N (S)", q);
            prop_assert!(mail.text_body.contains(&expected));
            if a != b {
                prop_assert_ne!(mail_id(&a), mail_id(&b));
            }
        }
    }
}
