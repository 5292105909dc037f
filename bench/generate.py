#!/usr/bin/env python3
"""Deterministic receivables book for the benchmarks.

    bench/generate.py --customers 100000 --invoices 1000000 --seed 42 --out bench/out/data-1m

Writes, under --out:
  customers/NNNNN.json   {"items": [...]} batches of 1 000 for POST /v1/customers/batch
  invoices/NNNNN.json    {"items": [...]} batches of 1 000 for POST /v1/invoices/batch
  customers.csv          the same customers as rows of the `customers` table (COPY reference)
  invoices.csv           the same invoices as rows of the `invoices` table (COPY reference)
  payments.tsv           payments to post later: customer_external_id, currency, amount
                         (full or partial payment of some of that customer's invoices)
  meta.json              counts, seed, the customer holding the most invoices

The book: currencies mostly EUR with some USD, GBP and PLN (by customer); the customer of
each invoice is drawn from a power law, so a few customers hold most invoices and most of
the money; amounts are Pareto-distributed; due dates are spread over the past year and
the next two months; about 30 % of the invoices are to be paid in full later and 10 % in
part. Row ids are 1..N in file order (customers and invoices), as when loaded in order.
The same seed always gives the same files.
"""

import argparse
import csv
import datetime as dt
import json
import os
import random

CURRENCIES = [("EUR", 0.80), ("USD", 0.10), ("GBP", 0.06), ("PLN", 0.04)]
COUNTRIES = {"EUR": ["ES", "FR", "DE", "IT", "PT", "NL"], "USD": ["US"], "GBP": ["GB"], "PLN": ["PL"]}
LANGUAGES = {"ES": "es", "FR": "fr", "PL": "pl"}
TERMS = [0, 15, 30, 30, 30, 45, 60, 60, 90]
BATCH = 1000
# Customer index = floor(N * u^SKEW): customer 0 gets N^(-1/SKEW) of all invoices.
SKEW = 2.5


def pick_currency(rng):
    x = rng.random()
    for code, share in CURRENCIES:
        if x < share:
            return code
        x -= share
    return "EUR"


def fmt(minor):
    return f"{minor // 100}.{minor % 100:02d}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--invoices", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", default="2026-11-23", help="the book's today (default 2026-11-23)")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    rng = random.Random(a.seed)
    # A second stream for delivery confirmations, so adding them left the rest of the book
    # as it was.
    delivery_rng = random.Random(a.seed + 1)
    today = dt.date.fromisoformat(a.as_of)
    stamp = "2026-11-23 00:00:00"
    os.makedirs(os.path.join(a.out, "customers"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "invoices"), exist_ok=True)

    customers = []  # (external_id, currency, terms)
    with open(os.path.join(a.out, "customers.csv"), "w", newline="") as fcsv:
        w = csv.writer(fcsv)
        batch = []
        for i in range(a.customers):
            ext = f"C-{i + 1:07d}"
            cur = pick_currency(rng)
            country = rng.choice(COUNTRIES[cur])
            lang = LANGUAGES.get(country, "en")
            terms = rng.choice(TERMS)
            limit = int(rng.paretovariate(1.5) * 5000) * 100
            customers.append((ext, cur, terms))
            name = f"Customer {i + 1} {country}"
            batch.append({
                "external_id": ext, "name": name, "country": country, "language": lang,
                "currency": cur, "payment_terms_days": terms, "credit_limit": fmt(limit),
            })
            # org_id, external_id, name, country, language, currency, payment_terms_days,
            # credit_limit_minor, contacts, version, created_at, updated_at
            w.writerow([1, ext, name, country, lang, cur, terms, limit, "[]", 1, stamp, stamp])
            if len(batch) == BATCH:
                write_batch(a.out, "customers", i // BATCH, batch)
                batch = []
        if batch:
            write_batch(a.out, "customers", (a.customers - 1) // BATCH, batch)

    n_cust = a.customers
    per_customer = [0] * n_cust
    pay_plan = {}  # customer index -> minor to pay later
    with open(os.path.join(a.out, "invoices.csv"), "w", newline="") as fcsv:
        w = csv.writer(fcsv)
        batch = []
        for j in range(a.invoices):
            ci = min(int(n_cust * rng.random() ** SKEW), n_cust - 1)
            per_customer[ci] += 1
            ext_c, cur, terms = customers[ci]
            # Pareto amounts (alpha 1.2, from 20.00), bigger for the big accounts.
            base = 2000 if ci > n_cust // 100 else 20000
            amount = min(int(rng.paretovariate(1.2) * base), 500_000_000)
            tax = amount * 21 // 121
            due = today + dt.timedelta(days=rng.randint(-365, 60))
            issue = due - dt.timedelta(days=terms)
            ext = f"F-{j + 1:08d}"
            number = f"{issue.year}/{j + 1:08d}"
            po = f"PO-{rng.randint(1, 999999):06d}" if rng.random() < 0.3 else None
            item = {
                "external_id": ext, "customer_external_id": ext_c, "number": number,
                "currency": cur, "amount": fmt(amount), "tax_amount": fmt(tax),
                "issue_date": issue.isoformat(), "due_date": due.isoformat(),
            }
            if po:
                item["purchase_order"] = po
            # 97 % of the invoices already issued are confirmed delivered the day after
            # issue (P16); the rest are chased by re-sending them first.
            delivered = issue + dt.timedelta(days=1)
            delivered = delivered if delivered <= today and delivery_rng.random() < 0.97 else None
            if delivered:
                item["delivered_on"] = delivered.isoformat()
            batch.append(item)
            # org_id, customer_id, external_id, kind, number, currency, amount_minor, tax_minor,
            # open_minor, issue_date, due_date, purchase_order, delivered_on, status, version,
            # created_at, updated_at
            w.writerow([1, ci + 1, ext, "invoice", number, cur, amount, tax, amount,
                        issue.isoformat(), due.isoformat(), po or "",
                        delivered.isoformat() if delivered else "", "open", 1, stamp, stamp])
            r = rng.random()
            if r < 0.30:
                pay_plan[ci] = pay_plan.get(ci, 0) + amount
            elif r < 0.40:
                pay_plan[ci] = pay_plan.get(ci, 0) + max(1, amount * rng.randint(10, 90) // 100)
            if len(batch) == BATCH:
                write_batch(a.out, "invoices", j // BATCH, batch)
                batch = []
        if batch:
            write_batch(a.out, "invoices", (a.invoices - 1) // BATCH, batch)

    with open(os.path.join(a.out, "payments.tsv"), "w") as f:
        for ci in sorted(pay_plan):
            ext_c, cur, _ = customers[ci]
            # Large accounts pay in several remittances.
            parts = max(1, min(per_customer[ci] // 20, 50))
            total = pay_plan[ci]
            for k in range(parts):
                share = total // parts + (total % parts if k == 0 else 0)
                if share > 0:
                    f.write(f"{ext_c}\t{cur}\t{fmt(share)}\n")

    top = max(range(n_cust), key=lambda i: per_customer[i])
    meta = {
        "customers": a.customers, "invoices": a.invoices, "seed": a.seed, "as_of": a.as_of,
        "largest_customer_index": top, "largest_customer_id": top + 1,
        "largest_customer_external_id": customers[top][0],
        "largest_customer_invoices": per_customer[top],
        "payments_planned": sum(1 for _ in open(os.path.join(a.out, "payments.tsv"))),
    }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


def write_batch(out, kind, n, items):
    with open(os.path.join(out, kind, f"{n:05d}.json"), "w") as f:
        json.dump({"items": items}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
