import Platform
import Postgres

extension Migrator {
    /// Where migrations live: `$PINGLASS_MIGRATIONS_DIR`, `../share/pinglass/migrations` beside
    /// the executable, or `./migrations`.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let d = environment["PINGLASS_MIGRATIONS_DIR"], !d.isEmpty { return d }
        if let exe = System.executableDirectory() {
            let installed = exe + "/../share/pinglass/migrations"
            if System.isDirectory(installed) { return installed }
        }
        return "migrations"
    }
}
