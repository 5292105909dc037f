//! The table definitions shared by both engines (hand-written: the two migration sets
//! must agree with this file; the integration tests exercise every table on both).

diesel::table! {
    organizations (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        settings -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_clients (id) {
        id -> BigInt,
        org_id -> BigInt,
        client_id -> Text,
        name -> Text,
        role -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        org_id -> BigInt,
        external_id -> Nullable<Text>,
        name -> Text,
        legal_name -> Nullable<Text>,
        tax_id -> Nullable<Text>,
        country -> Nullable<Text>,
        language -> Text,
        currency -> Text,
        payment_terms_days -> Integer,
        segment -> Nullable<Text>,
        collector -> Nullable<Text>,
        sales_rep -> Nullable<Text>,
        credit_limit_minor -> Nullable<BigInt>,
        dunning_paused_until -> Nullable<Date>,
        dunning_pause_reason -> Nullable<Text>,
        contacts -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        credit_status -> Text,
        risk_class -> Nullable<Text>,
        risk_score -> Integer,
        flag_broken_promise -> Bool,
        flag_over_limit -> Bool,
        flag_at_risk -> Bool,
        flag_in_dispute -> Bool,
        flag_with_agency -> Bool,
        flag_legal -> Bool,
    }
}

diesel::table! {
    invoices (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        external_id -> Nullable<Text>,
        kind -> Text,
        number -> Text,
        currency -> Text,
        amount_minor -> BigInt,
        tax_minor -> BigInt,
        open_minor -> BigInt,
        issue_date -> Date,
        due_date -> Date,
        purchase_order -> Nullable<Text>,
        delivered_on -> Nullable<Date>,
        status -> Text,
        status_reason -> Nullable<Text>,
        paid_on -> Nullable<Date>,
        written_off_minor -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disputed_minor -> BigInt,
        written_off_on -> Nullable<Date>,
    }
}

diesel::table! {
    credit_refresh_queue (customer_id) {
        customer_id -> BigInt,
        org_id -> BigInt,
        seq -> BigInt,
        queued_at -> Timestamp,
    }
}

diesel::table! {
    customer_credit (customer_id) {
        customer_id -> BigInt,
        org_id -> BigInt,
        oldest_due_date -> Nullable<Date>,
        broken_promise_dates -> Text,
        plan_defaulted_on -> Nullable<Date>,
        hold_reasons -> Text,
        held_since -> Nullable<Timestamp>,
        release_until -> Nullable<Date>,
        release_reason -> Nullable<Text>,
        released_by -> Nullable<Text>,
        risk_signals -> Text,
        risk_computed_on -> Nullable<Date>,
        updated_at -> Timestamp,
        strategy_hold_since -> Nullable<Date>,
        risk_baseline_on -> Nullable<Date>,
    }
}

diesel::table! {
    credit_exposures (customer_id, currency) {
        customer_id -> BigInt,
        currency -> Text,
        org_id -> BigInt,
        open_receivables_minor -> BigInt,
        unapplied_minor -> BigInt,
        open_orders_minor -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credit_applications (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> Nullable<BigInt>,
        status -> Text,
        legal_name -> Nullable<Text>,
        tax_id -> Nullable<Text>,
        country -> Nullable<Text>,
        address -> Nullable<Text>,
        years_in_business -> Nullable<Integer>,
        company_size -> Nullable<Text>,
        currency -> Text,
        requested_limit_minor -> Nullable<BigInt>,
        requested_terms_days -> Nullable<Integer>,
        trade_references -> Text,
        bank_references -> Text,
        financials -> Nullable<Text>,
        attachments -> Text,
        notes -> Nullable<Text>,
        score -> Nullable<Integer>,
        risk_class -> Nullable<Text>,
        recommended_limit_minor -> Nullable<BigInt>,
        recommended_terms_days -> Nullable<Integer>,
        scorecard -> Nullable<Text>,
        submitted_at -> Nullable<Timestamp>,
        decision -> Nullable<Text>,
        next_review_on -> Nullable<Date>,
        created_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credit_limit_history (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        application_id -> Nullable<BigInt>,
        currency -> Text,
        previous_limit_minor -> Nullable<BigInt>,
        new_limit_minor -> Nullable<BigInt>,
        previous_terms_days -> Integer,
        new_terms_days -> Integer,
        previous_risk_class -> Nullable<Text>,
        new_risk_class -> Nullable<Text>,
        changed_by -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(api_clients -> organizations (org_id));
diesel::joinable!(customers -> organizations (org_id));
diesel::joinable!(invoices -> customers (customer_id));

diesel::table! {
    payments (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        external_id -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        received_on -> Date,
        method -> Text,
        reference -> Nullable<Text>,
        allocated_minor -> BigInt,
        status -> Text,
        reversed_at -> Nullable<Timestamp>,
        reversal_reason -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    allocations (id) {
        id -> BigInt,
        org_id -> BigInt,
        payment_id -> Nullable<BigInt>,
        credit_note_id -> Nullable<BigInt>,
        invoice_id -> BigInt,
        amount_minor -> BigInt,
        rule -> Text,
        applied_on -> Date,
        created_by -> Text,
        created_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
        release_reason -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (org_id, idempotency_key) {
        org_id -> BigInt,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        org_id -> BigInt,
        kind -> Text,
        subject_id -> Text,
        customer_id -> Nullable<BigInt>,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    promises (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        amount_minor -> BigInt,
        currency -> Text,
        promised_date -> Date,
        created_on -> Date,
        window_end -> Date,
        channel -> Text,
        contact_name -> Nullable<Text>,
        taken_by -> Text,
        notes -> Nullable<Text>,
        status -> Text,
        paid_minor -> BigInt,
        evaluated_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    promise_invoices (promise_id, invoice_id) {
        promise_id -> BigInt,
        invoice_id -> BigInt,
    }
}

diesel::table! {
    payment_plans (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        currency -> Text,
        total_minor -> BigInt,
        frequency -> Nullable<Text>,
        grace_days -> Integer,
        created_on -> Date,
        status -> Text,
        paid_minor -> BigInt,
        defaulted_on -> Nullable<Date>,
        cancel_reason -> Nullable<Text>,
        created_by -> Text,
        evaluated_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    plan_invoices (plan_id, invoice_id) {
        plan_id -> BigInt,
        invoice_id -> BigInt,
    }
}

diesel::table! {
    plan_instalments (id) {
        id -> BigInt,
        plan_id -> BigInt,
        seq -> Integer,
        due_date -> Date,
        amount_minor -> BigInt,
        paid_minor -> BigInt,
        status -> Text,
        reminded_on -> Nullable<Date>,
    }
}

diesel::table! {
    disputes (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        invoice_id -> BigInt,
        amount_minor -> BigInt,
        currency -> Text,
        reason -> Text,
        description -> Nullable<Text>,
        raised_via -> Nullable<Text>,
        raised_on -> Date,
        owner_department -> Text,
        assignee -> Nullable<Text>,
        due_by -> Nullable<Date>,
        status -> Text,
        resolution -> Nullable<Text>,
        resolved_on -> Nullable<Date>,
        credit_note_id -> Nullable<BigInt>,
        created_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    dispute_comments (id) {
        id -> BigInt,
        dispute_id -> BigInt,
        author -> Text,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        kind -> Text,
        priority -> Text,
        assignee -> Nullable<Text>,
        title -> Text,
        due_on -> Date,
        status -> Text,
        source_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    risk_facts (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        kind -> Text,
        subject_id -> Text,
        occurred_on -> Date,
        amount_minor -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    job_runs (org_id, job, run_date) {
        org_id -> BigInt,
        job -> Text,
        run_date -> Date,
        status -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        summary -> Nullable<Text>,
    }
}

diesel::table! {
    strategies (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        is_default -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    strategy_versions (id) {
        id -> BigInt,
        strategy_id -> BigInt,
        org_id -> BigInt,
        version -> Integer,
        description -> Text,
        rules -> Text,
        steps -> Text,
        status -> Text,
        published_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    strategy_acknowledgements (version_id, subject) {
        version_id -> BigInt,
        subject -> Text,
        acknowledged_at -> Timestamp,
    }
}

diesel::table! {
    templates (id) {
        id -> BigInt,
        org_id -> BigInt,
        key -> Text,
        language -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    collection_runs (id) {
        id -> BigInt,
        org_id -> BigInt,
        as_of -> Date,
        dry_run -> Bool,
        status -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        customers_examined -> BigInt,
        invoices_examined -> BigInt,
        actions_created -> BigInt,
        summary -> Text,
        created_by -> Text,
    }
}

diesel::table! {
    actions (id) {
        id -> BigInt,
        org_id -> BigInt,
        run_id -> Nullable<BigInt>,
        customer_id -> BigInt,
        strategy_version_id -> Nullable<BigInt>,
        step_level -> Integer,
        step_key -> Text,
        action -> Text,
        tone -> Text,
        status -> Text,
        assignee -> Nullable<Text>,
        requires_approval -> Bool,
        scheduled_on -> Date,
        language -> Text,
        recipient -> Nullable<Text>,
        subject -> Nullable<Text>,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        approved_by -> Nullable<Text>,
        completed_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        next_attempt_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        message_id -> Nullable<Text>,
    }
}

diesel::table! {
    action_invoices (action_id, invoice_id) {
        action_id -> BigInt,
        invoice_id -> BigInt,
        step_level -> Integer,
    }
}

diesel::table! {
    invoice_dunning (invoice_id) {
        invoice_id -> BigInt,
        level -> Integer,
        last_dunned_on -> Nullable<Date>,
        clock_start -> Nullable<Date>,
    }
}

diesel::table! {
    activities (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        action_id -> Nullable<BigInt>,
        invoice_ids -> Text,
        channel -> Text,
        direction -> Text,
        outcome -> Text,
        notes -> Nullable<Text>,
        next_action_on -> Nullable<Date>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    escalations (id) {
        id -> BigInt,
        org_id -> BigInt,
        customer_id -> BigInt,
        kind -> Text,
        status -> Text,
        is_open -> Bool,
        currency -> Text,
        recovered_minor -> BigInt,
        commission_minor -> BigInt,
        action_id -> Nullable<BigInt>,
        opened_on -> Date,
        agency -> Nullable<Text>,
        agency_reference -> Nullable<Text>,
        placed_on -> Nullable<Date>,
        law_firm -> Nullable<Text>,
        court -> Nullable<Text>,
        filing_reference -> Nullable<Text>,
        filed_on -> Nullable<Date>,
        judgment_on -> Nullable<Date>,
        closed_on -> Nullable<Date>,
        reason -> Nullable<Text>,
        notes -> Nullable<Text>,
        created_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    action_instalments (action_id, instalment_id) {
        action_id -> BigInt,
        instalment_id -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        org_id -> BigInt,
        subject -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        roles -> Text,
        team -> Nullable<Text>,
        language -> Nullable<Text>,
        active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    escalation_invoices (escalation_id, invoice_id) {
        escalation_id -> BigInt,
        invoice_id -> BigInt,
        amount_minor -> BigInt,
    }
}

diesel::table! {
    escalation_transitions (id) {
        id -> BigInt,
        escalation_id -> BigInt,
        from_status -> Nullable<Text>,
        to_status -> Text,
        on_date -> Date,
        reason -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(payments -> customers (customer_id));
diesel::joinable!(escalation_invoices -> escalations (escalation_id));
diesel::joinable!(escalation_invoices -> invoices (invoice_id));
diesel::joinable!(action_instalments -> actions (action_id));
diesel::joinable!(strategy_versions -> strategies (strategy_id));
diesel::joinable!(action_invoices -> actions (action_id));
diesel::joinable!(promise_invoices -> promises (promise_id));
diesel::joinable!(plan_invoices -> payment_plans (plan_id));
diesel::joinable!(plan_instalments -> payment_plans (plan_id));
diesel::joinable!(dispute_comments -> disputes (dispute_id));
diesel::joinable!(allocations -> payments (payment_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    api_clients,
    customers,
    invoices,
    payments,
    allocations,
    idempotency_keys,
    events,
    promises,
    promise_invoices,
    payment_plans,
    plan_invoices,
    plan_instalments,
    disputes,
    dispute_comments,
    tasks,
    risk_facts,
    job_runs,
    strategies,
    strategy_versions,
    strategy_acknowledgements,
    templates,
    collection_runs,
    actions,
    action_invoices,
    invoice_dunning,
    activities,
    customer_credit,
    credit_refresh_queue,
    credit_exposures,
    credit_applications,
    credit_limit_history,
    escalations,
    escalation_invoices,
    escalation_transitions,
    action_instalments,
    users,
);
