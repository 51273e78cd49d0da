//! The seeded tables as the loader sees them: each column's type (which
//! decides how a CSV field is checked and written), whether it may be empty,
//! and the table a foreign key points to. Types are those of revision
//! 1b33292593a9 (`workers/sql/1b33292593a9.upgrade.sql`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `integer`.
    Int,
    /// `numeric(precision, scale)`.
    Numeric { precision: u32, scale: u32 },
    /// `text`, or `varchar(n)` when `Some(n)`.
    Text(Option<usize>),
    /// `varchar[]` from a JSON array of strings (or a Python-literal list).
    TextArray,
    /// `jsonb` from JSON.
    Json,
    /// `jsonb` holding a list: a JSON array, or a Python-literal list
    /// (`['a', 'b']`) turned into one.
    JsonList,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// NOT NULL in the table: the CSV must have the column, and a value in every record.
    pub required: bool,
    /// The table a foreign key on this column points to (at its `id`).
    pub references: Option<&'static str>,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A CSV column that is not a table column but goes elsewhere.
pub const PREFERENCES: &str = "preferences";

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
        references: None,
    }
}

const fn req(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
        references: None,
    }
}

const fn fk(name: &'static str, required: bool, table: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        required,
        references: Some(table),
    }
}

const ID: Column = req("id", Kind::Int);
const MONEY: Kind = Kind::Numeric {
    precision: 10,
    scale: 2,
};

pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ID,
            col("first_name", Kind::Text(Some(255))),
            col("last_name", Kind::Text(Some(255))),
            col("city", Kind::Text(Some(255))),
            col("gender", Kind::Text(Some(64))),
            col("age", Kind::Int),
            col("avatar_url", Kind::Text(None)),
            col("hobbies", Kind::TextArray),
            col("search_history", Kind::TextArray),
            col("lifestyle_preferences", Kind::TextArray),
            col("location", Kind::Text(None)),
        ],
    },
    Table {
        name: "products",
        columns: &[
            ID,
            col("name", Kind::Text(None)),
            col("category", Kind::Text(None)),
            col("price", MONEY),
            col("brand", Kind::Text(Some(64))),
            col("description", Kind::Text(None)),
            col("specifications", Kind::Json),
        ],
    },
    Table {
        name: "features",
        columns: &[
            ID,
            req("feature_name", Kind::Text(Some(255))),
            req("categories", Kind::JsonList),
        ],
    },
    Table {
        name: "product_features",
        columns: &[
            ID,
            fk("product_id", true, "products"),
            fk("feature_id", true, "features"),
        ],
    },
    Table {
        name: "product_reviews",
        columns: &[
            ID,
            fk("product_id", false, "products"),
            col("user_name", Kind::Text(Some(255))),
            col("review", Kind::Text(None)),
            col(
                "rating",
                Kind::Numeric {
                    precision: 5,
                    scale: 2,
                },
            ),
            fk("feature_id", false, "features"),
            col("sentiment", Kind::Text(None)),
        ],
    },
    Table {
        name: "product_images",
        columns: &[
            ID,
            fk("product_id", false, "products"),
            req("image_url", Kind::Text(None)),
        ],
    },
    Table {
        name: "variants",
        columns: &[
            ID,
            fk("product_id", true, "products"),
            req("price", MONEY),
            req("in_stock", Kind::Int),
        ],
    },
    Table {
        name: "variant_attributes",
        columns: &[
            ID,
            req("product_id", Kind::Int),
            fk("variant_id", true, "variants"),
            req("attribute_name", Kind::Text(Some(128))),
            req("attribute_value", Kind::Text(Some(128))),
        ],
    },
];

pub fn find(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_planned_table_has_a_layout() {
        for table in shared::seed::tables() {
            assert!(super::find(table).is_some(), "{table}");
        }
    }
}
