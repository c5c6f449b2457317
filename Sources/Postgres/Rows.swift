import CLibPQ

/// The rows of one statement. Owns the `PGresult` and clears it when released, so every
/// path (throw, early return) frees it. Values are copied out as Swift strings.
///
/// ```swift
/// let rows = try db.query("SELECT id, name FROM styles")
/// for row in rows { print(row.int("id"), row.string("name")) }
/// ```
public final class Rows: Sequence {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
    deinit { PQclear(raw) }

    public var count: Int { Int(PQntuples(raw)) }
    public var isEmpty: Bool { count == 0 }
    /// Rows changed by INSERT/UPDATE/DELETE (0 for other statements).
    public var affected: Int { Int(String(cString: PQcmdTuples(raw))) ?? 0 }
    public var first: Row? { count > 0 ? Row(rows: self, index: 0) : nil }
    public subscript(index: Int) -> Row { Row(rows: self, index: index) }

    public func makeIterator() -> AnyIterator<Row> {
        var i = 0
        return AnyIterator { [self] in
            guard i < count else { return nil }
            defer { i += 1 }
            return Row(rows: self, index: i)
        }
    }

    func column(_ name: String) -> Int32 {
        let c = PQfnumber(raw, name)
        precondition(c >= 0, "no column \(name) in result")
        return c
    }
}

/// One row; columns are read by name, in PostgreSQL's text format.
public struct Row {
    let rows: Rows
    let index: Int32
    init(rows: Rows, index: Int) { self.rows = rows; self.index = Int32(index) }

    public func isNull(_ column: String) -> Bool { PQgetisnull(rows.raw, index, rows.column(column)) == 1 }

    public func string(_ column: String) -> String? {
        let c = rows.column(column)
        if PQgetisnull(rows.raw, index, c) == 1 { return nil }
        return String(cString: PQgetvalue(rows.raw, index, c))
    }
    public func int(_ column: String) -> Int? { string(column).flatMap { Int($0) } }
    public func double(_ column: String) -> Double? { string(column).flatMap { Double($0) } }
    /// `t` or `f`; nil for NULL and for anything else (a value that is not a boolean is not `false`).
    public func bool(_ column: String) -> Bool? {
        switch string(column) {
        case "t": return true
        case "f": return false
        default: return nil
        }
    }

    /// Non-optional accessors for NOT NULL columns: a NULL here is a programming error.
    public func requiredString(_ column: String) -> String {
        guard let v = string(column) else { preconditionFailure("column \(column) is NULL") }
        return v
    }
    public func requiredInt(_ column: String) -> Int {
        guard let v = int(column) else { preconditionFailure("column \(column) is NULL or not an integer") }
        return v
    }
}
