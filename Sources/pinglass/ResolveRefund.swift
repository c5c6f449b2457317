import ArgumentParser
import PinGlass
import Postgres
import Providers

struct ResolveRefund: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve-refund",
        abstract: "Settle a refund held because nobody can tell whether its Cancel reached the bank.",
        discussion: """
            For a payment where T-Bank ignores ExternalRequestId (SBP), a refund whose Cancel had \
            an unknown outcome is never sent again by the refund duty: when GetState still shows no \
            refund after the settle period (`pinglass refund --settle`, 15 min) it is held and alerted \
            (refund-unresolved). Look the payment up in the bank's dashboard, then say what you saw. \
            This command first shows the refund and what T-Bank's GetState says now (and how our \
            records read it), then: --landed records the refund as succeeded (with the figures our \
            records give) and moves the payment; --not-landed makes it due again, and the refund duty \
            sends it with the same ExternalRequestId. What you say is checked against that reading: \
            --landed is refused when no Cancel of the refund ever went out (nothing of ours reached \
            the bank), and needs --force when our reading of GetState is "not landed" (the bank's \
            state can lag behind a refund the dashboard already shows); --not-landed is refused \
            while our reading is "landed" (the refund duty records it), and needs --force unless \
            our reading is "not landed" (GetState failed, a refund in progress, or figures that \
            cannot tell: sending it again may refund twice). Only a refund still `requested` that \
            no sender holds right now; written to admin_audit with --reason (and whether --force \
            was given). Example: pinglass resolve-refund 17 --landed --force --reason "dashboard \
            shows the 108.47 RUB refund, GetState lags, ticket 412"
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The refund id (as in the alert).")
    var id: Int

    @Flag(help: "The bank's dashboard shows the refund went through.")
    var landed = false

    @Flag(help: "The bank's dashboard shows no such refund: send it again.")
    var notLanded = false

    @Option(help: ArgumentHelp("What you checked (kept in admin_audit).", valueName: "text"))
    var reason: String

    @Flag(help: "Go ahead although T-Bank's state just read does not support what you say (see above).")
    var force = false

    func validate() throws {
        guard landed != notLanded else { throw ValidationError("say --landed or --not-landed (one of them)") }
        guard reason.contains(where: { !$0.isWhitespace }) else { throw ValidationError("--reason must say what you checked") }
    }

    func run() throws {
        let config = try global.loadConfig()
        let deps = Dependencies.live(config: config, database: Database.forCLI(config))
        let db = try deps.db()
        do {
            let s = try RefundResolution.inspect(db, refundID: id)
            print("""
                refund \(s.refundID): \(Money(kopecks: s.amount)) of payment \(s.paymentID) (T-Bank \(s.bankPaymentID), paid \
                \(Money(kopecks: s.paid))), \(s.state), \(s.attempts) attempt(s), last Cancel sent \(s.cancelSentAt.map { $0 + " UTC" } ?? "never")
                  last error: \(s.lastError ?? "-")
                """)
            let (bank, landing) = askBank(deps, s)
            print("  T-Bank now: \(bank)")
            let verdict: RefundResolution.Verdict = landed ? .landed : .notLanded
            let done = try RefundResolution.resolve(db, refundID: id, verdict: verdict, reason: reason, actor: Operator.actor,
                                                    bank: bank, reading: landing, force: force)
            print(done)
        } catch let e as RefundResolution.Refusal {
            throw Refusal.refused(e.description)
        }
    }

    /// GetState and how our records read it, as one line (or why the bank could not be asked).
    func askBank(_ deps: Dependencies, _ s: RefundResolution.Subject) -> (String, RefundLanding?) {
        guard let terminal = PaymentCheck.terminal(key: s.terminalKey, in: deps.config), !s.bankPaymentID.isEmpty else {
            return ("not asked: the payment's terminal \(s.terminalKey) is not configured or it has no T-Bank PaymentId", nil)
        }
        do {
            let state = try deps.bank(terminal, RefundSenderDefaults.timeout).getState(paymentID: s.bankPaymentID)
            let known = try RefundResolution.known(try deps.db(), refundID: s.refundID, paymentID: s.paymentID,
                                                   bankPaymentID: s.bankPaymentID, paid: s.paid)
            let landing = RefundLanding.judge(state, refund: s.amount, known: known)
            let route = state.params.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")
            return ("GetState \(state.status), Amount \(state.amount.map(String.init) ?? "-") (\(route.isEmpty ? "no Params" : route)); "
                    + "our reading: \(landing.summary)", landing)
        } catch {
            return ("GetState failed: \(error)", nil)
        }
    }
}

struct AckAlert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack-alert",
        abstract: "Acknowledge a repeating alert, so it stops repeating until something new happens.",
        discussion: """
            Only refunds-owed can be acknowledged: that alert repeats every hour while any refund has \
            failed or is unresolved for over a day. Acknowledging covers the refunds owed right now: \
            the alert stays quiet until a refund not among them becomes owed, or --for is over \
            (default 1d, at most 30d). Resolve each refund all the same (requeue-refund, \
            resolve-refund). Written to admin_audit with --reason. Example: pinglass ack-alert \
            refunds-owed --reason "refund 17 waits for the bank's reply, ticket 412"
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The alert: refunds-owed.")
    var alert: String

    @Option(help: ArgumentHelp("Why (kept in admin_audit).", valueName: "text"))
    var reason: String

    @Option(name: .customLong("for"), help: ArgumentHelp("How long it stays quiet at most.", valueName: "duration"))
    var duration = Duration(seconds: 86_400)

    func validate() throws {
        guard alert == "refunds-owed" else { throw ValidationError("only refunds-owed can be acknowledged, got \"\(alert)\"") }
        guard reason.contains(where: { !$0.isWhitespace }), reason.count <= 500 else { throw ValidationError("--reason must say why (at most 500 characters)") }
        guard (60...30 * 86_400).contains(duration.seconds) else { throw ValidationError("--for must be between 1m and 30d") }
    }

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        guard let acked = try SweepAlerts.acknowledgeRefundsOwed(db, reason: reason, seconds: Int(duration.seconds),
                                                                 actor: Operator.actor) else {
            throw Refusal.refused("no refund is owed now: nothing to acknowledge")
        }
        print("""
            refunds-owed acknowledged for \(duration): \(acked.refunds) refund(s), \(Money(kopecks: acked.kopecks)) (ids \(acked.ids)); \
            it is raised again as soon as another refund is owed
            """)
    }
}
