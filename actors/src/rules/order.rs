//! What a valid `order.fulfilled` is. Every text field is bounded and holds no
//! control characters (a CR/LF in a name must never reach a mail header);
//! quantities and line counts are bounded so totals cannot overflow.

use super::text;

pub const ORDER_ID_MAX_CHARS: usize = 64;
pub const CUSTOMER_NAME_MAX_CHARS: usize = 200;
/// RFC 5321's limit on a forward path.
pub const EMAIL_MAX_CHARS: usize = 254;
pub const SKU_MAX_CHARS: usize = 64;
pub const LINE_NAME_MAX_CHARS: usize = 200;
pub const LINES_MAX: usize = 100;
pub const QUANTITY_MAX: u32 = 10_000;

/// The fields of an order, borrowed from wherever they were decoded.
pub struct OrderFields<'a> {
    pub order_id: &'a str,
    pub customer_name: &'a str,
    pub customer_email: &'a str,
    /// `(sku, name, quantity)` per line.
    pub lines: Vec<(&'a str, &'a str, u32)>,
}

/// The first rule the order breaks, naming its field. The message never repeats
/// the customer's name or address: reasons end up in logs and dead-letter lists.
pub fn check_order(order: &OrderFields<'_>) -> Result<(), String> {
    text::check_line(order.order_id, ORDER_ID_MAX_CHARS).map_err(|e| format!("order_id {e}"))?;
    text::check_line(order.customer_name, CUSTOMER_NAME_MAX_CHARS).map_err(|e| format!("customer.name {e}"))?;
    text::check_line(order.customer_email, EMAIL_MAX_CHARS).map_err(|e| format!("customer.email {e}"))?;
    if !is_plausible_email(order.customer_email) {
        return Err("customer.email is not an email address".into());
    }
    if order.lines.is_empty() {
        return Err("an order needs at least one line".into());
    }
    if order.lines.len() > LINES_MAX {
        return Err(format!("an order has at most {LINES_MAX} lines"));
    }
    for (i, (sku, name, quantity)) in order.lines.iter().enumerate() {
        text::check_line(sku, SKU_MAX_CHARS).map_err(|e| format!("lines[{i}].sku {e}"))?;
        text::check_line(name, LINE_NAME_MAX_CHARS).map_err(|e| format!("lines[{i}].name {e}"))?;
        if !(1..=QUANTITY_MAX).contains(quantity) {
            return Err(format!("lines[{i}].quantity must be between 1 and {QUANTITY_MAX}"));
        }
    }
    Ok(())
}

/// A cheap shape check; the mailer's parser is the final judge.
fn is_plausible_email(address: &str) -> bool {
    let mut parts = address.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order<'a>(id: &'a str, name: &'a str, email: &'a str, lines: Vec<(&'a str, &'a str, u32)>) -> OrderFields<'a> {
        OrderFields { order_id: id, customer_name: name, customer_email: email, lines }
    }

    #[test]
    fn a_plain_order_passes() {
        assert!(check_order(&order("A-1001", "Ada Lovelace", "ada@example.com", vec![("BK-1", "Engines", 2)])).is_ok());
    }

    #[test]
    fn every_text_field_refuses_control_characters() {
        let line = || vec![("BK-1", "Engines", 1)];
        assert!(check_order(&order("A-1", "Eve\r\nX", "e@example.com", line())).is_err());
        assert!(check_order(&order("A\n1", "Eve", "e@example.com", line())).is_err());
        assert!(check_order(&order("A-1", "Eve", "e@example.com", vec![("B\rK", "E", 1)])).is_err());
        assert!(check_order(&order("A-1", "Eve", "e@example.com", vec![("BK", "E\u{202E}", 1)])).is_err());
    }

    #[test]
    fn quantities_line_counts_and_lengths_are_bounded() {
        let ok = "e@example.com";
        assert!(check_order(&order("A-1", "E", ok, vec![("S", "N", u32::MAX), ("S", "N", 1)])).is_err());
        assert!(check_order(&order("A-1", "E", ok, vec![("S", "N", 1); LINES_MAX + 1])).is_err());
        assert!(check_order(&order(&"x".repeat(300), "E", ok, vec![("S", "N", 1)])).is_err());
        assert!(check_order(&order("A-1", "E", ok, vec![("S", "N", QUANTITY_MAX); LINES_MAX])).is_ok());
    }

    #[test]
    fn a_bad_address_is_named_but_not_repeated() {
        let err = check_order(&order("A-1", "Ada", "ada.at.example", vec![("S", "N", 1)])).unwrap_err();
        assert_eq!(err, "customer.email is not an email address");
    }
}
