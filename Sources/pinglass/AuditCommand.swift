import ArgumentParser
import PinGlass
import Platform
import Postgres

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check the money and queue invariants on the live database; exit 1 on any violation.",
        discussion: """
            Checks: every job consumes exactly its own paid payment, refunds never exceed a \
            payment, our succeeded refunds are within what the bank reports refunded and a payment with \
            money given back is marked so, a finished job with missing photos has its refund row, never more than the share \
            of the photos its customer does not get, a failed job released no photo after its end, one with photos has its \
            delivery rows (jobs finished in the last \(PrunerDefaults.minimumDeliveryDays) days: prune deletes older ones), counts match tasks and photos, every succeeded task has its photo, no job \
            is left unfinished after its tasks ended, and no lease expired long ago is left behind. \
            Prints each broken rule with the ids (at most 1000 per rule), alerts the admin chat \
            (ADMIN_TELEGRAM_CHAT_ID, once per rule and hour) and exits 1. Its heartbeat (worker_runs, \
            duty audit: ok when nothing was broken) shows in /api/health; the sweep alerts when no audit \
            passed for over two hours. \
            With --quiet nothing is printed when every rule holds (the report as usual when one is \
            broken), so cron mails only a broken rule (or an error). \
            Cron (cron.d/pinglass) sends the report both to syslog and to cron's mail and keeps the exit code: \
            17 * * * * pinglass audit --quiet
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print nothing when every rule holds (for cron, which mails any output).")
    var quiet = false

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        let host = System.hostname()
        heartbeat { try DutyHeartbeats.started(db, duty: .audit, host: host) }
        let violations: [InvariantAudit.Violation]
        do {
            violations = try InvariantAudit.run(db)
        } catch {
            heartbeat { try DutyHeartbeats.finished(db, duty: .audit, host: host, ok: false, summary: ["error": .string(String("\(error)".prefix(500)))]) }
            throw error
        }
        for v in violations {
            print("VIOLATION  \(v.rule): \(v.ids.map(String.init).joined(separator: ", "))")
        }
        if !(quiet && violations.isEmpty) {
            print("\(InvariantAudit.ruleCount) invariants checked, \(violations.count) violated")
        }
        heartbeat {
            try DutyHeartbeats.finished(db, duty: .audit, host: host, ok: violations.isEmpty,
                                    summary: ["violations": .int(violations.count), "rules": .array(violations.map { .string($0.rule) })])
        }
        guard !violations.isEmpty else { return }
        do {
            let raised = try InvariantAudit.alert(db, chatID: config.adminTelegramChatID, violations: violations)
            print(config.adminTelegramChatID == nil ? "no ADMIN_TELEGRAM_CHAT_ID: no alert sent"
                  : "\(raised) new alert(s) for the admin chat (each rule at most once an hour)")
        } catch {
            print("the alert could not be queued: \(error)")
        }
        throw ExitCode(1)
    }

    /// The heartbeat never decides the audit's outcome; a failure to write it is said on stderr.
    func heartbeat(_ write: () throws -> Void) {
        do { try write() } catch { FileHandleStderr.write("pinglass audit: heartbeat not recorded: \(error)\n") }
    }
}
