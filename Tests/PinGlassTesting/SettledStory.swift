import XCTest
import PinGlass

/// What may legitimately be shown twice in the chat after a crash: the one batch a deliverer
/// sent and died before recording (Telegram has no idempotency key; docs/reliability.md#R9).
public enum RepeatedDelivery: Equatable {
    case none
    case photos(Set<String>)      // by SHA-256
    case finalMessage
}

extension XCTestCase {
    /// The end every paid story must reach, whatever crashed on the way: the job ended by
    /// its photos, one photo per succeeded task and none otherwise, every photo the rule
    /// delivers in the chat exactly once (the repeated batch exactly twice) and no other,
    /// with one final message, the refund the refund rule asks for (never the price of a
    /// photo the customer keeps) made once at the bank (one effective Cancel per refund row,
    /// every Cancel request under a refund row's key) and recorded from the bank's answer,
    /// and `pinglass audit` clean.
    public func assertSettled(_ story: PaidStory, job: Int, outcome: JobOutcome, repeated: RepeatedDelivery = .none,
                       _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try story.facts(job: job)
        func check(_ ok: Bool, _ what: String) { if !ok { XCTFail("\(label): \(what)", file: file, line: line) } }

        check(f.jobStatus == outcome.rawValue, "job \(f.jobStatus), expected \(outcome.rawValue)")
        let rule = RefundRule.standard
        check(rule.outcome(photos: f.photosMade, total: f.totalPhotos) == outcome, "\(f.photosMade) of \(f.totalPhotos) photos for a \(outcome) job")
        let delivered = rule.delivered(photos: f.photosMade, released: f.releasedSHA256.count, total: f.totalPhotos)
        check(f.releasedSHA256.count == delivered, "\(f.releasedSHA256.count) photos released, the rule delivers \(delivered)")
        check(f.tasks.count == f.totalPhotos, "\(f.tasks.count) tasks")
        for t in f.tasks {
            check(["succeeded", "failed"].contains(t.state), "task \(t.id) is \(t.state)")
            check(t.photos == (t.state == "succeeded" ? 1 : 0), "task \(t.id) (\(t.state)) has \(t.photos) photos")
        }
        check(f.photosMade == f.tasks.filter { $0.state == "succeeded" }.count, "photos \(f.photosMade) vs succeeded tasks")

        // The chat: each released photo of the job once, the repeated batch twice, nothing else.
        check(f.deliveryStates == ["sent": f.deliveryStates["sent"] ?? 0] && (f.deliveryStates["sent"] ?? 0) > 0,
              "delivery rows \(f.deliveryStates)")
        check(Set(f.chatPhotos.keys) == Set(f.releasedSHA256), "the chat shows photos that are not the job's released ones, or misses some")
        for sha in f.releasedSHA256 {
            var expected = 1
            if case .photos(let twice) = repeated, twice.contains(sha) { expected = 2 }
            check(f.chatPhotos[sha] == expected, "photo \(sha.prefix(12)) shown \(f.chatPhotos[sha] ?? 0) times, expected \(expected)")
        }
        if case .photos(let twice) = repeated { check(!twice.isEmpty && twice.isSubset(of: Set(f.releasedSHA256)), "the repeated batch is the job's") }
        let finals = repeated == .finalMessage ? 2 : 1
        check(f.chatTexts.count == finals, "\(f.chatTexts.count) texts in the chat, expected \(finals) final message(s)")
        check(Set(f.chatTexts).count == 1, "the final messages differ: \(f.chatTexts)")

        // The money: the rule's refund, once, at the bank and in our books.
        let due = rule.refund(amount: Money(kopecks: f.paymentAmount), photos: f.photosMade, released: f.releasedSHA256.count,
                              total: f.totalPhotos).kopecks
        check(f.refunds.map(\.amount) == (due > 0 ? [due] : []), "refund rows \(f.refunds.map(\.amount)), the rule asks \(due)")
        check(f.refunds.allSatisfy { $0.state == "succeeded" }, "refund states \(f.refunds.map(\.state))")
        let keys = f.refunds.map(\.externalRequestID)
        check(f.bankCancels.map(\.externalRequestID).sorted() == keys.sorted(), "one effective Cancel per refund: \(f.bankCancels)")
        for r in f.refunds {
            check(f.bankCancels.first { $0.externalRequestID == r.externalRequestID }?.amount == r.amount, "refund \(r.id) at the bank")
        }
        check(f.cancelRequests.allSatisfy(keys.contains), "a Cancel went out under a key that is no refund's: \(f.cancelRequests)")
        check(f.bankRefunded == due, "the bank refunded \(f.bankRefunded), expected \(due)")
        check(f.paymentRefunded == f.bankRefunded, "our payment says \(f.paymentRefunded) refunded, the bank \(f.bankRefunded)")
        let status = due == 0 ? "succeeded" : due == f.paymentAmount ? "refunded" : "partially_refunded"
        check(f.paymentStatus == status, "payment \(f.paymentStatus), expected \(status)")

        let audit = try story.cli(["audit"])
        check(audit.status == 0 && audit.output.contains(" 0 violated"), "audit: \(audit.output)")
    }
}
