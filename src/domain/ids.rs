//! Public identifiers: every resource id is an opaque string made of a type prefix and the
//! row key (`cus_42`). A malformed id, or one of another type, finds nothing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customer,
    Invoice,
    ApiClient,
    Organization,
    User,
    Payment,
    Allocation,
    Event,
    Promise,
    Plan,
    Instalment,
    Dispute,
    Comment,
    Task,
    Strategy,
    Template,
    Run,
    Action,
    Activity,
    CreditApplication,
    Escalation,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Customer => "cus_",
            Kind::Invoice => "inv_",
            Kind::ApiClient => "apc_",
            Kind::Organization => "org_",
            Kind::User => "usr_",
            Kind::Payment => "pay_",
            Kind::Allocation => "alc_",
            Kind::Event => "evt_",
            Kind::Promise => "ptp_",
            Kind::Plan => "plan_",
            Kind::Instalment => "ins_",
            Kind::Dispute => "dsp_",
            Kind::Comment => "cmt_",
            Kind::Task => "task_",
            Kind::Strategy => "stg_",
            Kind::Template => "tpl_",
            Kind::Run => "run_",
            Kind::Action => "act_",
            Kind::Activity => "cnt_",
            Kind::CreditApplication => "cap_",
            Kind::Escalation => "esc_",
        }
    }

    pub fn encode(self, key: i64) -> String {
        format!("{}{key}", self.prefix())
    }

    /// The row key of a public id of this kind, or `None` for anything else.
    pub fn decode(self, id: &str) -> Option<i64> {
        let digits = id.strip_prefix(self.prefix())?;
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok().filter(|k| *k > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_do_not_cross_kinds() {
        assert_eq!(Kind::Customer.encode(42), "cus_42");
        assert_eq!(Kind::Customer.decode("cus_42"), Some(42));
        assert_eq!(Kind::Invoice.decode("cus_42"), None);
        for bad in [
            "",
            "cus_",
            "cus_-1",
            "cus_0",
            "cus_1a",
            "42",
            "cus_99999999999999999999",
            "cus_+1",
        ] {
            assert_eq!(Kind::Customer.decode(bad), None, "{bad}");
        }
    }
}
