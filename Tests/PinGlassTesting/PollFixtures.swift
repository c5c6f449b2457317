import Foundation
import PinGlass
import Postgres
import Providers

/// What the poller and the finisher tests share beyond rows (those come from `JobFixtures`).
public enum PollFixtures {
    /// Dependencies for a poller or a finisher of `database`: its own connection, the media
    /// secret, a fresh media folder, results allowed from loopback hosts.
    public static func deps(_ database: TestDatabase, env: [String: String] = [:]) throws -> Dependencies {
        // KIE_API_URL on loopback says Kie is local (the tests' servers are): results may then
        // come from loopback addresses. FakeKie answers instead of anything at that URL.
        var vars = ["MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret, "STORAGE_DIR": try TestEnvironment.makeTempDir("media"),
                    "KIE_RESULT_HOSTS": "127.0.0.1", "KIE_API_URL": "http://127.0.0.1:9/kie"]
        vars.merge(env) { $1 }
        let config = try database.config(vars)
        return Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                                 migrationsDirectory: try TestDatabase.migrationsDir())
    }
}
