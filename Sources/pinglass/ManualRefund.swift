import ArgumentParser
import PinGlass
import Postgres

struct ManualRefund: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manual-refund",
        abstract: "Queue a refund an operator decided on; `pinglass refund` sends it.",
        discussion: """
            First prints the payment (by its T-Bank PaymentId or our order id), the generation job \
            that consumed it (if any) with how far its photos were delivered, and its refunds. Then \
            writes a pending refund, requested by cli:<your unix user>, records it in admin_audit and \
            wakes the refund sender. --reason and --ticket are required: the ticket (your support \
            ticket, at most 100 characters) is the idempotency key, one refund per ticket and payment, \
            so running the same command again (after a dropped SSH session) adds nothing and says \
            which refund the ticket made; the same ticket with another amount is refused. A payment a \
            generation consumed, or one that has a refund already (automatic or manual, in any state), \
            is refused unless you add --force. It goes through the same rules as automatic refunds: \
            the payment must be succeeded or partially refunded, and the database refuses a refund \
            beyond what the payment can still give back (paid, minus what the bank already refunded, \
            minus refunds still in flight). --amount is a whole number of kopecks (15050), or roubles \
            with a ₽, rub or руб suffix and at most two decimals (150.50₽, "150,5 rub"). Example: \
            pinglass manual-refund --payment 7000000001 --amount 150rub --ticket 412 --reason "blurry portraits"
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The payment: T-Bank PaymentId or our order id.", valueName: "id"))
    var payment: String

    @Option(help: ArgumentHelp("Kopecks (15050), or roubles with ₽/rub/руб (150.50₽).", valueName: "amount"))
    var amount: String

    @Option(help: ArgumentHelp("Why (kept in the refund row and the audit trail).", valueName: "text"))
    var reason: String

    @Option(help: ArgumentHelp("Your ticket: one refund per ticket and payment (a repeat does nothing new).", valueName: "ticket"))
    var ticket: String

    @Flag(help: "Refund a payment a generation consumed, or one that has a refund already.")
    var force = false

    func validate() throws {
        guard RefundAmount.parse(amount) != nil else {
            throw ValidationError("--amount must be positive kopecks (15050) or roubles with ₽, rub or руб (150.50₽), got \"\(amount)\"")
        }
        guard reason.contains(where: { !$0.isWhitespace }) else { throw ValidationError("--reason must say why") }
        guard ticket.contains(where: { !$0.isWhitespace }), ticket.count <= ManualRefunds.maxTicketLength else {
            throw ValidationError("--ticket must be 1 to \(ManualRefunds.maxTicketLength) characters")
        }
    }

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        let q: ManualRefunds.Queued
        do {
            print(try ManualRefunds.inspect(db, payment: payment).lines.joined(separator: "\n"))
            q = try ManualRefunds.request(db, payment: payment, amount: RefundAmount.parse(amount)!, reason: reason, ticket: ticket,
                                          force: force, actor: Operator.actor)
        } catch let e as ManualRefunds.Refusal {
            throw Refusal.refused(e.description)
        }
        if q.repeated {
            print("""
                nothing new: ticket "\(ticket)" already made refund \(q.refundID) of \(q.amount) on payment \(q.paymentID) \
                (ExternalRequestId \(q.externalRequestID)); it is listed above with its state
                """)
            return
        }
        print("""
            refund \(q.refundID) queued: \(q.amount) back on payment \(q.paymentID) (order \(q.orderID), T-Bank \(q.bankPaymentID ?? "-"))
              paid \(q.paid), refunded at the bank so far \(q.refundedAtBank), other refunds in flight \(q.inFlight); \
            still refundable after this one: \(q.headroomAfter)
            next: `pinglass refund` sends T-Bank Cancel for \(q.amount) with ExternalRequestId \(q.externalRequestID) on its \
            next pass (a waiting sender wakes now if its run still has 3 × --timeout left, else the next minute's run takes it). Follow it in psql (connected as \
            DATABASE_URL says): SELECT state, attempts, last_error, bank_status FROM refunds WHERE id = \(q.refundID);
            """)
    }
}

struct RequeueRefund: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue-refund",
        abstract: "Send a failed refund again, after fixing what made the bank refuse it.",
        discussion: """
            Moves the refund from failed back to pending (only from failed), records it in admin_audit \
            and wakes the refund sender, which sends it with the same ExternalRequestId. The database \
            checks again that it still fits the payment (a refund made meanwhile in the bank's \
            dashboard counts).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The refund id (as in the alert).")
    var id: Int

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        do {
            let previous = try ManualRefunds.requeue(db, refundID: id, actor: Operator.actor)
            print("refund \(id) re-queued (it had failed with: \(previous ?? "no recorded error")); `pinglass refund` sends it on its next pass")
        } catch let e as ManualRefunds.Refusal {
            throw Refusal.refused(e.description)
        }
    }
}
