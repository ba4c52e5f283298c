//! SQL statements built with their arguments, for the writer's batches, whose text varies
//! with their size.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Arguments, Encode, Type};

use super::Backend;
use crate::error::{Error, Result};

/// A transaction of the writer.
pub(super) type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// SQL text and its arguments, built together so that each value gets the next placeholder:
/// `$n` for PostgreSQL, `?` for SQLite, which looks numbered parameters up by name, one linear
/// scan each (measured: a third of the writer's time on a full batch).
pub(super) struct Statement {
    text: String,
    args: AnyArguments,
    backend: Backend,
}

impl Statement {
    pub(super) fn new(backend: Backend, text: &str) -> Statement {
        Statement { text: text.to_owned(), args: AnyArguments::default(), backend }
    }

    pub(super) fn sql(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Writes the placeholder of `value` and binds it.
    pub(super) fn bind<'t, T>(&mut self, value: T) -> Result<&mut Self>
    where
        T: Encode<'t, sqlx::Any> + Type<sqlx::Any>,
    {
        self.args.add(value).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => self.text.push_str(&format!("${}", self.args.len())),
        }
        Ok(self)
    }

    /// Writes `v1, v2, ...` binding each.
    pub(super) fn list<'t, T>(&mut self, values: impl IntoIterator<Item = T>) -> Result<&mut Self>
    where
        T: Encode<'t, sqlx::Any> + Type<sqlx::Any>,
    {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql(", ");
            }
            self.bind(value)?;
        }
        Ok(self)
    }

    pub(super) async fn rows(self, tx: &mut Tx<'_>) -> Result<Vec<AnyRow>> {
        // Not cached: the text varies with the batch's size.
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args).persistent(false).fetch_all(&mut **tx).await?)
    }

    pub(super) async fn run(self, tx: &mut Tx<'_>) -> Result<()> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args).persistent(false).execute(&mut **tx).await?;
        Ok(())
    }
}
