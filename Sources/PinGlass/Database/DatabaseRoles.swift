import Postgres

/// Two database roles. The schema owner is what `pinglass migrate` (and the simulator, for its
/// own schema `sim`) connects as, through `MIGRATION_DATABASE_URL`; everything else (the pool,
/// the cron duties, the operator commands) uses `DATABASE_URL`, a role that reads and writes
/// rows but owns nothing, so it can neither drop nor alter a table or a trigger: the money
/// rules kept in triggers (no refund beyond the payment, only a succeeded payment buys a
/// generation) hold whatever the application is made to run. With `DATABASE_URL` alone, one
/// role does both, as before.
///
/// The runtime role's rights are granted by `pinglass migrate` itself, on every run, after the
/// migrations, to the role `DATABASE_URL` logs in as (so they always match the schema, and no
/// migration has to know the role's name): USAGE on the schema, SELECT, INSERT, UPDATE and
/// DELETE on its tables, USAGE and SELECT on its sequences, and the same as the owner's default
/// privileges, so a table a later migration creates is covered from the start. Except where
/// rows are kept forever (`keptForever`): no DELETE on them, and the audit trail may only be
/// read and added to; only SELECT on `schema_migrations`. Nobody but the owner may create
/// objects in the schema (CREATE is revoked from PUBLIC and from the role): an object of the
/// runtime role's there could shadow one the triggers use. (The trigger functions themselves
/// run with a fixed `search_path`, set by migration 0018.)
///
/// ```swift
/// let role = try DatabaseRoles.currentRole(runtimeConnection)
/// try DatabaseRoles.grantRowRights(ownerConnection, to: role)
/// let rights = try DatabaseRoles.schemaRights(runtimeConnection)   // doctor: can it run DDL?
/// ```
public enum DatabaseRoles {
    /// The role a connection acts as.
    public static func currentRole(_ db: some Queryable) throws -> String {
        try db.query("SELECT current_user::text AS role", retry: .idempotent)[0].requiredString("role")
    }

    /// Grants `role` the rights to read and write the rows of the owner's current schema (one
    /// transaction; granting again changes nothing). `owner` is the migration connection.
    public static func grantRowRights(_ owner: Connection, to role: String) throws {
        try owner.withTransaction { tx in
            let names = try tx.query("""
                SELECT quote_ident($1) AS role, quote_ident(current_schema()) AS schema, quote_ident(current_user) AS owner
                """, [role])[0]
            let (r, s, o) = (names.requiredString("role"), names.requiredString("schema"), names.requiredString("owner"))
            for sql in [
                "GRANT USAGE ON SCHEMA \(s) TO \(r)",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \(s) TO \(r)",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA \(s) TO \(r)",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \(o) IN SCHEMA \(s) GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \(r)",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \(o) IN SCHEMA \(s) GRANT USAGE, SELECT ON SEQUENCES TO \(r)",
            ] {
                try tx.execute(sql)
            }
            // The migrations' own record is the migrator's alone.
            try tx.execute("REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM \(r)")
            for (table, rights) in keptForever {
                try tx.execute("REVOKE \(rights) ON \(s).\(table) FROM \(r)")
            }
            try tx.execute("REVOKE CREATE ON SCHEMA \(s) FROM PUBLIC, \(r)")
        }
    }

    /// The tables whose rows the application never deletes (the money, the jobs and what they
    /// made, the operators' audit trail: nothing at runtime deletes them, prune included), and
    /// the rights the runtime role does not get on them. An avatar's deletion marks it and
    /// removes its reference photos (kept deletable); of its generated photos only the stored
    /// objects go, the rows are marked `media_removed_at` (docs/architecture.md#media-retention).
    public static let keptForever: [(table: String, rights: String)] = [
        ("payments", "DELETE"), ("refunds", "DELETE"), ("generation_jobs", "DELETE"),
        ("generation_tasks", "DELETE"), ("generated_photos", "DELETE"), ("admin_audit", "UPDATE, DELETE"),
    ]

    /// What a role could do to the schema beyond its rows.
    public struct SchemaRights: Equatable, Sendable {
        public let role: String
        public let superuser: Bool
        /// Owns (or is a member of the owner of) a table of the schema: may alter or drop it and its triggers.
        public let ownsTables: Bool
        /// May create objects in the schema.
        public let createOnSchema: Bool

        /// True when the role can run DDL on the schema (what the runtime role should not).
        public var canChangeSchema: Bool { superuser || ownsTables || createOnSchema }

        /// The reasons, for a message ("superuser, owns tables").
        public var reasons: [String] {
            (superuser ? ["superuser"] : []) + (ownsTables ? ["owns the tables"] : []) + (createOnSchema ? ["CREATE on the schema"] : [])
        }
    }

    /// The rights of the connection's own role on its current schema.
    public static func schemaRights(_ db: some Queryable) throws -> SchemaRights {
        let row = try db.query("""
            SELECT current_user::text AS role,
                   coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser,
                   coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS create_on_schema,
                   EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                             AND pg_has_role(c.relowner, 'USAGE')) AS owns_tables
            """, retry: .idempotent)[0]
        return SchemaRights(role: row.requiredString("role"), superuser: row.bool("superuser") ?? false,
                            ownsTables: row.bool("owns_tables") ?? false, createOnSchema: row.bool("create_on_schema") ?? false)
    }
}
