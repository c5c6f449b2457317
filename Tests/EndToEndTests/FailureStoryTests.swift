import XCTest
import PinGlassTesting
@testable import PinGlass

/// The failure story (the demo's second story): a paid job whose every task fails
/// at Kie ends `failed`, the whole price goes back at the bank in one Cancel, and the chat
/// gets the final message saying so, and nothing else.
final class FailureStoryTests: XCTestCase {
    func testAJobWhoseEveryTaskFailsIsRefundedInFullAndTheChatIsTold() throws {
        let db = try makeDatabase()
        let story = try PaidStory(database: db, telegramID: 63_001)
        defer { story.stop() }
        try story.kie.set(["failNext": 7])
        try story.prepareAvatar()
        try story.pay()
        let job = try story.startJob()

        let quiet = try Quiesce(environment: story.cliEnvironment).run()
        try assertSettled(story, job: job, outcome: .failed, "failure story")

        let facts = try story.facts(job: job)
        XCTAssertEqual(facts.chatPhotos, [:], "no photo")
        XCTAssertEqual(facts.chatTexts, ["""
            Sorry, we could not make your PinGlass portraits.
            We are refunding 499 ₽ to your card.
            """], "no web app link with no photo to show; \(quiet.passes) passes")
        let atBank = try story.bank.payment(story.bankPaymentID)
        XCTAssertEqual(atBank["status"]?.stringValue, "REFUNDED")
        XCTAssertEqual(atBank["charged"]?.intValue, 0)
        XCTAssertTrue(try story.bank.page(story.bankPaymentID).contains("Refunded 499.00 RUB"), "what the customer sees on the bank's page")
        XCTAssertEqual(try story.payment().status, "refunded")
    }
}
