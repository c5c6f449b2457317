import ArgumentParser
import PinGlass

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check the money and queue invariants on the live database; exit 1 on any violation.",
        discussion: """
            Read-only. Checks: every job consumes exactly its own paid payment, refunds never exceed a \
            payment, our succeeded refunds are within what the bank reports refunded and a payment with \
            money given back is marked so, a finished job with missing photos has its refund row, never more than the share \
            of the photos its customer does not get, a failed job released no photo after its end, one with photos has its \
            delivery rows (jobs finished in the last \(PrunerDefaults.minimumDeliveryDays) days: prune deletes older ones), counts match tasks and photos, every succeeded task has its photo, no job \
            is left unfinished after its tasks ended, and no lease expired long ago is left behind. \
            Prints each broken rule with the ids (at most 1000 per rule). \
            Cron: 17 * * * * pinglass audit
            """
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let config = try global.loadConfig()
        let violations = try InvariantAudit.run(Database.forCLI(config).connection())
        for v in violations {
            print("VIOLATION  \(v.rule): \(v.ids.map(String.init).joined(separator: ", "))")
        }
        print("\(InvariantAudit.ruleCount) invariants checked, \(violations.count) violated")
        if !violations.isEmpty { throw ExitCode(1) }
    }
}
