import Platform

/// The process's database handle: one libpq connection, opened lazily (after fork in a
/// FastCGI worker), reconnected after a server restart, and left idle after every request.
///
/// ```swift
/// let database = Database(url: config.databaseURL, applicationName: "pinglass-fcgi")
/// let rows = try database.connection().query("SELECT 1")
/// ```
public final class Database {
    public let conninfo: String
    private var conn: Connection?

    public init(url: String, applicationName: String) {
        conninfo = Database.withDefaults(url, applicationName: applicationName)
    }

    /// Adds `connect_timeout` and `application_name` unless the operator set them.
    static func withDefaults(_ url: String, applicationName: String) -> String {
        var extras: [(String, String)] = []
        if !url.contains("connect_timeout") { extras.append(("connect_timeout", "3")) }
        if !url.contains("application_name") { extras.append(("application_name", applicationName)) }
        guard !extras.isEmpty else { return url }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let sep = url.contains("?") ? "&" : "?"
            return url + sep + extras.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        }
        return (url + " " + extras.map { "\($0.0)=\($0.1)" }.joined(separator: " ")).trimmingSpaces()
    }

    /// The open connection, connecting first when needed.
    public func connection() throws -> Connection {
        if let conn { return conn }
        let c = try Connection(conninfo)
        conn = c
        return c
    }

    /// True while this process's connection has a transaction open (`Connection.hasOpenTransaction`);
    /// false with no connection yet, and on a broken one outside `withTransaction`.
    public var hasOpenTransaction: Bool { conn?.hasOpenTransaction ?? false }

    /// True when this process has a connection and libpq still believes it is up; false
    /// before the first connection and after the server was found gone.
    public var isConnected: Bool { conn?.isConnected ?? false }

    /// Ends a unit of work: rolls back anything left open so the next one starts idle.
    public func finishRequest() {
        conn?.resetToIdle()
    }

    public func close() {
        conn?.close()
        conn = nil
    }
}
