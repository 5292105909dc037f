//! PostgreSQL statements over a set of ids that diesel keeps as prepared statements.
//!
//! Diesel prepares and caches a statement per connection only when its SQL is the same
//! for every call; raw SQL (`sql_query`, `batch_execute`) and an `IN (…)` list whose length
//! varies are parsed and planned again by the server on every call; on the payment path
//! the balance refresh was such a statement. A [`ByIds`] statement has one fixed
//! text whose binds are a timestamp and an id array (`= ANY($2)`), so the server parses it
//! once per connection, and plans it once where `db::prefer_generic_plans` is in force.

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Timestamp};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// The text of a statement over ids, in three pieces around its two binds: a timestamp
/// (`$1`) and the id predicate, `= ANY($2)` here and `IN (…)` where arrays do not exist.
pub trait IdsStatement: 'static {
    const SQL: [&'static str; 3];

    /// The same statement with the timestamp and ids inlined (SQLite, where parsing is an
    /// in-process call and the ids are integers read from the database).
    fn inline(at: NaiveDateTime, ids: &[i64]) -> String {
        let [head, middle, tail] = Self::SQL;
        let at = at.format("%Y-%m-%d %H:%M:%S%.6f");
        let ids = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        format!("{head}'{at}'{middle}IN ({ids}){tail}")
    }
}

/// One execution of an [`IdsStatement`] on PostgreSQL.
pub struct ByIds<'a, S> {
    at: NaiveDateTime,
    ids: &'a [i64],
    statement: PhantomData<S>,
}

impl<'a, S: IdsStatement> ByIds<'a, S> {
    pub fn new(at: NaiveDateTime, ids: &'a [i64]) -> Self {
        ByIds {
            at,
            ids,
            statement: PhantomData,
        }
    }
}

impl<S: IdsStatement> QueryId for ByIds<'_, S> {
    // One type per statement text: diesel's statement cache is keyed by this type.
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: IdsStatement> QueryFragment<Pg> for ByIds<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let [head, middle, tail] = S::SQL;
        out.push_sql(head);
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(middle);
        out.push_sql("= ANY(");
        out.push_bind_param::<Array<BigInt>, _>(self.ids)?;
        out.push_sql(")");
        out.push_sql(tail);
        Ok(())
    }
}

impl<S> RunQueryDsl<PgConnection> for ByIds<'_, S> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Touch;
    impl IdsStatement for Touch {
        const SQL: [&'static str; 3] = ["UPDATE t SET at = ", " WHERE id ", ""];
    }

    #[test]
    fn pg_text_binds_the_timestamp_then_the_id_array() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
            .and_then(|d| d.and_hms_micro_opt(10, 0, 0, 5))
            .expect("valid");
        let sql = diesel::debug_query::<Pg, _>(&ByIds::<Touch>::new(at, &[3, 4])).to_string();
        assert!(sql.starts_with("UPDATE t SET at = $1 WHERE id = ANY($2)"), "{sql}");
        assert_eq!(
            Touch::inline(at, &[3, 4]),
            "UPDATE t SET at = '2026-12-04 10:00:00.000005' WHERE id IN (3,4)"
        );
    }
}
