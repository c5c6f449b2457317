import HTTPCore
import Logging
import PinGlass
import PinGlassWeb
import PinGlassConfig
import Postgres
import Providers

/// The HTTP application driven in-process (no nginx, no FastCGI): the same handlers,
/// the same database, a fixed clock when a test needs one, and the logger every request's
/// logger derives from (a `LogCapture`'s to see what requests log). It is `TestClient`'s
/// in-process transport; requests go through the client.
///
/// ```swift
/// let app = try InProcessApp(database: db)
/// let res = try app.client.get("/api/pricing")   // TestClient.inProcess(app)
/// ```
public final class InProcessApp {
    public let app: App
    public let deps: Dependencies

    public init(database: TestDatabase, env: [String: String] = [:], now: Double? = nil,
                log: Logger = Logger(label: "http")) throws {
        let config = try database.config(env)
        deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
        if let now { deps.clock.now = { now } }
        app = App(deps: deps, log: log)
    }

    public init(config: Config, log: Logger = Logger(label: "http")) throws {
        deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
        app = App(deps: deps, log: log)
    }
}
