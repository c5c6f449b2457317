import ArgumentParser
import PinGlass
import Postgres
#if canImport(Glibc)
import Glibc
#endif

struct RequeueDelivery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue-delivery",
        abstract: "Put failed Telegram deliveries back in the queue.",
        discussion: """
            Each named delivery (telegram_deliveries.id) that is failed becomes pending and due now; \
            it gives up 24 h from now at the earliest; its attempts are kept. Recorded in admin_audit \
            as cli:<user>. A delivery that does not exist, is not failed, or whose photos were removed \
            (deleted by the customer, or past MEDIA_RETENTION_DAYS: nothing is left to send) is left \
            alone and named on stderr; the exit code is then 1. A running `pinglass deliver` picks \
            the rows up at once.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Delivery ids.", valueName: "id"))
    var ids: [Int]

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("name at least one delivery id") }
        guard ids.allSatisfy({ $0 > 0 }) else { throw ValidationError("delivery ids are positive numbers") }
    }

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        let actor = "cli:" + (getenv("SUDO_USER").map { String(cString: $0) } ?? getenv("USER").map { String(cString: $0) } ?? "unknown")
        var refused = 0
        for id in ids {
            switch try DeliveryRequeue.requeue(db, id: id, actor: actor) {
            case .requeued(let attempts, let giveUpAt):
                print("delivery \(id): failed → pending (attempts so far: \(attempts); gives up at \(giveUpAt))")
            case .notFound:
                refused += 1
                FileHandleStderr.write("pinglass: delivery \(id): no such delivery\n")
            case .notFailed(let state):
                refused += 1
                FileHandleStderr.write("pinglass: delivery \(id): is \(state), not failed; left alone\n")
            case .photosRemoved(let n):
                refused += 1
                FileHandleStderr.write("pinglass: delivery \(id): \(n) of its photos were removed (deleted by the customer "
                                       + "or past MEDIA_RETENTION_DAYS); nothing to send, left failed\n")
            }
        }
        if refused > 0 { throw ExitCode(1) }
    }
}
