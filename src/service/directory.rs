//! The customers a batch of inputs refers to, by Recaudo id or by the ERP's external id,
//! loaded with two queries whatever the number of inputs.

use std::collections::{HashMap, HashSet};

use crate::db::DbConnection;
use crate::db::repo::customers::{self as repo, CustomerRow};
use crate::domain::ids::Kind;
use crate::error::AppError;

/// A reference to a customer as inputs carry it.
#[derive(Debug, Clone, Copy)]
pub struct CustomerRef<'a> {
    pub customer_id: Option<&'a str>,
    pub customer_external_id: Option<&'a str>,
}

pub struct CustomerDirectory {
    by_id: HashMap<i64, CustomerRow>,
    by_external_id: HashMap<String, i64>,
}

impl CustomerDirectory {
    pub fn load<'a>(
        c: &mut DbConnection,
        org_id: i64,
        refs: impl IntoIterator<Item = CustomerRef<'a>>,
    ) -> Result<CustomerDirectory, AppError> {
        let mut ids = HashSet::new();
        let mut externals = HashSet::new();
        for r in refs {
            if let Some(id) = r.customer_id.and_then(|id| Kind::Customer.decode(id)) {
                ids.insert(id);
            }
            if let Some(e) = r.customer_external_id {
                externals.insert(e);
            }
        }
        let ids: Vec<i64> = ids.into_iter().collect();
        let externals: Vec<&str> = externals.into_iter().collect();
        let mut by_id: HashMap<i64, CustomerRow> = repo::find_many(c, org_id, &ids)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut by_external_id = HashMap::new();
        for row in repo::find_by_external_ids(c, org_id, &externals)? {
            if let Some(k) = row.external_id.clone() {
                by_external_id.insert(k, row.id);
            }
            by_id.insert(row.id, row);
        }
        Ok(CustomerDirectory { by_id, by_external_id })
    }

    /// The customer a reference names (`None` if it names none that exists); when both
    /// ids are given they must name the same customer.
    pub fn resolve(&self, r: CustomerRef<'_>) -> Result<Option<&CustomerRow>, AppError> {
        let by_id = r
            .customer_id
            .map(|id| Kind::Customer.decode(id).and_then(|k| self.by_id.get(&k)));
        let by_ext = r
            .customer_external_id
            .map(|e| self.by_external_id.get(e).and_then(|id| self.by_id.get(id)));
        match (by_id, by_ext) {
            (Some(Some(a)), Some(Some(b))) if a.id != b.id => Err(AppError::invalid(
                "customer_external_id",
                "names a different customer than customer_id",
            )),
            (Some(found), _) => Ok(found),
            (None, Some(found)) => Ok(found),
            (None, None) => Ok(None),
        }
    }
}
