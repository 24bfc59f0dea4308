//! The emailer: mails the customer when an order is fulfilled, at most once per order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use minijinja::{context, Environment};

use crate::event::{Event, OrderFulfilled};
use crate::messages::{HandleEvent, HandlerError};
use crate::metrics::ActorMetrics;
use crate::ports::{EmailLog, MailClaim, MailError, Mailer, OutgoingMail};
use crate::supervision::guard;

const NAME: &str = "emailer";
const MAILBOX_CAPACITY: usize = 1024;
const TEXT_TEMPLATE: &str = "order_fulfilled.txt";
const HTML_TEMPLATE: &str = "order_fulfilled.html";
/// A claim older than this is taken to be abandoned by a dead instance. Longer
/// than any send may take (the SMTP mailer times out well before).
pub const CLAIM_STALE_AFTER: Duration = Duration::from_secs(30);

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
    /// instead of racing the first to the mail server.
    in_progress: HashSet<String>,
    metrics: ActorMetrics,
}

impl Emailer {
    pub fn new(log: Arc<dyn EmailLog>, mailer: Arc<dyn Mailer>, instance: &str, metrics: ActorMetrics) -> Self {
        Self { log, mailer, templates: Arc::new(templates()), instance: instance.into(), in_progress: HashSet::new(), metrics }
    }
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template(TEXT_TEMPLATE, include_str!("../templates/order_fulfilled.txt.j2"))
        .expect("the text template parses");
    env.add_template(HTML_TEMPLATE, include_str!("../templates/order_fulfilled.html.j2"))
        .expect("the html template parses");
    env
}

/// Renders the notification for an order.
pub fn render(templates: &Environment<'static>, order: &OrderFulfilled) -> Result<OutgoingMail, String> {
    let total_items: u32 = order.lines.iter().map(|l| l.quantity).sum();
    let ctx = context! { order_id => &order.order_id, customer => &order.customer, lines => &order.lines, total_items };
    let render = |name: &str| {
        templates
            .get_template(name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| format!("rendering {name}: {e}"))
    };
    Ok(OutgoingMail {
        message_id: format!("order-{}@blog.local", sanitize(&order.order_id)),
        to_name: order.customer.name.clone(),
        to_email: order.customer.email.clone(),
        subject: format!("Your order {} is on its way", order.order_id),
        text_body: render(TEXT_TEMPLATE)?,
        html_body: render(HTML_TEMPLATE)?,
    })
}

/// Keeps an order id usable in a Message-ID and a file name.
pub fn sanitize(order_id: &str) -> String {
    order_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

crate::supervised_worker!(Emailer, NAME);

/// Mail one fulfilled order.
impl Handler<HandleEvent> for Emailer {
    type Result = ResponseActFuture<Self, Result<(), HandlerError>>;

    fn handle(&mut self, msg: HandleEvent, _: &mut Context<Self>) -> Self::Result {
        let Event::OrderFulfilled(order) = &msg.event else {
            return Box::pin(actix::fut::ready(Err(HandlerError::Permanent("not an order event".into()))));
        };
        let (order, order_id) = (order.clone(), order.order_id.clone());
        if !self.in_progress.insert(order_id.clone()) {
            self.metrics.mailbox(NAME, -1);
            let busy = format!("order {order_id} is being mailed by another delivery");
            return Box::pin(actix::fut::ready(Err(HandlerError::Deferred(busy))));
        }
        let (log, mailer, templates) = (self.log.clone(), self.mailer.clone(), self.templates.clone());
        let instance = self.instance.clone();
        let envelope = msg.envelope.clone();
        let work = async move {
            let retry = |e: crate::ports::StoreError| HandlerError::Retryable(e.to_string());
            match log.claim_order_mail(&order.order_id, &instance, CLAIM_STALE_AFTER).await.map_err(retry)? {
                MailClaim::Send => {}
                MailClaim::AlreadySent => {
                    tracing::info!(order_id = %order.order_id, "order already mailed; skipping the duplicate");
                    return Ok(());
                }
                MailClaim::HeldElsewhere => {
                    return Err(HandlerError::Deferred(format!("order {} is being mailed by another instance", order.order_id)));
                }
            }
            let mail = render(&templates, &order).map_err(HandlerError::Permanent)?;
            mailer.send(&mail).await.map_err(|e| match e {
                MailError::Transient(_) => HandlerError::Retryable(e.to_string()),
                MailError::Rejected(_) => HandlerError::Permanent(e.to_string()),
            })?;
            log.mark_order_mailed(&order.order_id, &mail.to_email, &mail.message_id).await.map_err(retry)?;
            tracing::info!(order_id = %order.order_id, to = %mail.to_email, "order mail sent");
            Ok(())
        };
        Box::pin(guard(NAME, self.metrics.clone(), envelope, work).into_actor(self).map(move |guarded, act, ctx| {
            act.in_progress.remove(&order_id);
            if guarded.panicked {
                ctx.stop();
            }
            guarded.result
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Customer, OrderLine};

    #[test]
    fn the_mail_names_the_customer_and_every_line() {
        let order = OrderFulfilled {
            order_id: "A-1001".into(),
            customer: Customer { name: "Ada Lovelace".into(), email: "ada@example.com".into() },
            lines: vec![
                OrderLine { sku: "BK-1".into(), name: "Analytical Engines".into(), quantity: 2 },
                OrderLine { sku: "BK-2".into(), name: "Notes".into(), quantity: 1 },
            ],
        };
        let mail = render(&templates(), &order).unwrap();
        assert!(mail.text_body.contains("Hello Ada Lovelace"));
        assert!(mail.text_body.contains("2 x Analytical Engines (BK-1)"));
        assert!(mail.text_body.contains("3 items in all"));
        assert!(mail.html_body.contains("<strong>A-1001</strong>"));
        assert_eq!(mail.message_id, "order-A-1001@blog.local");
    }
}
