import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
import ProviderWire
@testable import PinGlass

/// `pinglass deliver` in-process against FakeTelegram and a real database: what is sent, in
/// which form, what is recorded, and how each Telegram answer is classified.
final class DelivererTests: DatabaseTestCase {
    var telegram: FakeTelegram!
    var deps: Dependencies!
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        telegram = FakeTelegram()
        deps = try DeliveryFixtures.deps(db, telegram: telegram)
        c = try db.connect()
    }

    /// A deliverer with a short chat interval, so tests that send several rows to one chat
    /// wait tenths of a second, not seconds, and a global budget these tests never reach
    /// (DeliveryPacingTests holds both limits).
    func deliverer(_ deps: Dependencies? = nil, chatInterval: Double = 0.05) throws -> Deliverer {
        var config = Deliverer.Config()
        config.chatIntervalSeconds = chatInterval
        config.globalPerSecond = 1000
        return try Deliverer(deps: deps ?? self.deps, config: config)
    }

    @discardableResult
    func pass(_ d: Deliverer? = nil) throws -> Deliverer.Report {
        let d = try d ?? deliverer()
        return try d.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
    }

    func rows(_ jobID: Int? = nil, where condition: String = "true") throws -> [DeliveryFixtures.DeliveryRow] {
        try DeliveryFixtures.rows(c, jobID: jobID, where: condition)
    }

    func photoIDs(_ jobID: Int) throws -> [Int] {
        try c.query("""
            SELECT p.id FROM generated_photos p JOIN generation_tasks t ON t.id = p.task_id WHERE p.job_id = $1 ORDER BY t.prompt_index
            """, [jobID]).map { $0.requiredInt("id") }
    }

    func alerts() throws -> [String] {
        try c.query("SELECT payload ->> 'key' AS key FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id").map { $0.requiredString("key") }
    }

    // MARK: what is sent

    func testAlbumsThenTheFinalMessageAreSentInOrderAndTheirIdsRecorded() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7101, photos: 23, succeeded: 18)
        try DeliveryFixtures.drain(deliverer())

        let calls = telegram.calls
        XCTAssertEqual(calls.map(\.method), [.mediaGroup, .mediaGroup, .message])
        XCTAssertTrue(calls.allSatisfy { $0.chatID == 7101 && !$0.failed })
        XCTAssertEqual(calls.map(\.media.count), [8, 10, 0], "the short batch first")
        XCTAssertEqual(calls[0].caption, "PinGlass · portraits 1–8")
        XCTAssertEqual(calls[1].caption, "PinGlass · portraits 9–18")
        let text = try XCTUnwrap(calls[2].text)
        XCTAssertTrue(text.contains("18 of 23"), text)
        XCTAssertTrue(text.contains("108.47 ₽"), "the refund, 49 900 × 5 / 23 kopecks: \(text)")
        XCTAssertEqual(calls[2].keyboard, [[InlineButton(text: "Open the gallery", action: .webApp("https://pinglass.example/?job=\(job.id)"))]],
                       "a web_app button to the job's gallery (PUBLIC_BASE_URL is https)")
        XCTAssertTrue(calls.prefix(2).allSatisfy(\.keyboard.isEmpty), "albums carry no buttons")
        XCTAssertFalse(text.contains("could not be sent"), text)

        // Local media (no https link): the bytes are uploaded, this job's photos in prompt order.
        let photos = try photoIDs(job.id)
        let taskOf = Dictionary(uniqueKeysWithValues: try c.query("SELECT id, task_id FROM generated_photos WHERE job_id = $1", [job.id])
            .map { ($0.requiredInt("id"), $0.requiredInt("task_id")) })
        let uploaded = calls.prefix(2).flatMap(\.media)
        XCTAssertEqual(uploaded, photos.map {
            .upload(filename: "portrait-\($0).jpg", contentType: "image/jpeg", bytes: GenerationFixtures.jpeg(taskOf[$0]!))
        })

        let recorded = try rows(job.id)
        XCTAssertEqual(recorded.map(\.state), ["sent", "sent", "sent"])
        XCTAssertEqual(recorded.map(\.messageIDs), calls.map(\.messageIDs), "Telegram's message ids, one per photo")
        XCTAssertEqual(recorded.map(\.attempts), [1, 1, 1])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE sent_at IS NULL")[0].int("n"), 0)
        XCTAssertEqual(try Counters.value(c, "telegram.sent"), 3)
        XCTAssertEqual(try Counters.value(c, "telegram.messages"), 19)
        XCTAssertNil(try deliverer().secondsUntilDue(), "nothing waits")
        XCTAssertEqual(try pass(), Deliverer.Report(), "a sent row is never sent again")
        XCTAssertEqual(telegram.calls.count, 3)
    }

    func testOnePhotoGoesAsAPhotoAndRussianUsersReadRussian() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7102, photos: 13, succeeded: 11, languageCode: "ru")
        try DeliveryFixtures.drain(deliverer())
        let calls = telegram.calls
        XCTAssertEqual(calls.map(\.method), [.photo, .mediaGroup, .message], "the short batch first")
        XCTAssertEqual(calls[0].caption, "PinGlass · портрет 1")
        XCTAssertEqual(calls[1].caption, "PinGlass · портреты 2–11")
        let text = try XCTUnwrap(calls[2].text)
        XCTAssertTrue(text.contains("готовы: 11 из 13"), text)
        XCTAssertTrue(text.contains("Возвращаем на вашу карту 76,76 ₽"), "2 of 13 back: \(text)")
        XCTAssertEqual(calls[2].keyboard.first?.first?.text, "Открыть галерею")
        XCTAssertEqual(try rows(job.id).map(\.state), ["sent", "sent", "sent"])
    }

    /// Alerts go to the admin chat, a group: Telegram allows about 20 messages a minute
    /// there, so it is paced at least 3 s whatever the chat interval.
    func testAlertsGoToTheAdminChatPacedAsAGroup() throws {
        try Alerts.raise(c, chatID: DeliveryFixtures.adminChat, key: "kie-credits", text: "Kie is out of credits")
        try Alerts.raise(c, chatID: DeliveryFixtures.adminChat, key: "queue-stale", text: "a queue is stale")
        try pass()
        XCTAssertEqual(telegram.calls.map(\.chatID), [DeliveryFixtures.adminChat])
        XCTAssertEqual(telegram.calls.first?.text, "PinGlass alert: Kie is out of credits")
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.state), ["sent", "pending"])
        let asked = try XCTUnwrap(telegram.calls.first?.at)
        let paced = try XCTUnwrap(try c.query("SELECT extract(epoch FROM next_send_at)::float8 AS at FROM telegram_chat_pacing WHERE chat_id = $1",
                                              [DeliveryFixtures.adminChat])[0].double("at"))
        XCTAssertGreaterThanOrEqual(paced - asked, 2.9, "a group waits 3 s, not the 0.05-s chat interval")
        XCTAssertGreaterThan(try XCTUnwrap(try deliverer().secondsUntilDue()), 2)
    }

    /// The original re-sent old photos: a row naming another job's photo sends nothing, fails,
    /// and alerts; the database refuses attaching a photo to another job's row at all.
    func testPhotosOfAnotherJobAreNeverSent() throws {
        db.auditOnDrop = false   // a delivery row is forged on purpose (another job's photo)
        let mine = try DeliveryFixtures.finishedJob(deps, telegramID: 7103, photos: 7, succeeded: 7)
        let other = try DeliveryFixtures.finishedJob(deps, telegramID: 7104, photos: 7, succeeded: 7)
        let album = try XCTUnwrap(try rows(mine.id).first)
        let stranger = try photoIDs(other.id)[0]
        XCTAssertThrowsError(try c.execute("UPDATE generated_photos SET delivery_id = $1 WHERE id = $2", [album.id, stranger])) {
            XCTAssertTrue("\($0)".contains("23503"), "foreign key: \($0)")
        }
        try c.execute("""
            UPDATE telegram_deliveries SET payload = jsonb_set(payload, '{photos,0,id}', to_jsonb($2::bigint)) WHERE id = $1
            """, [album.id, stranger])
        try c.execute("DELETE FROM telegram_deliveries WHERE job_id = $1", [other.id])   // only the tampered row waits
        try pass()
        XCTAssertTrue(telegram.calls.allSatisfy { $0.method == .message && $0.chatID != 7104 }, "no photo sent: \(telegram.calls.map(\.method))")
        let failed = try XCTUnwrap(try rows(mine.id).first)
        XCTAssertEqual(failed.state, "failed")
        XCTAssertTrue(failed.lastError?.contains("not photos of job \(mine.id)") == true, failed.lastError ?? "")
        XCTAssertEqual(try alerts(), ["delivery-failed:job:\(mine.id)"])
    }

    // MARK: media form

    func testPhotosGoByLinkWhenTelegramCanFetchThem() throws {
        let deps = try DeliveryFixtures.deps(db, telegram: telegram, env: ["PUBLIC_MEDIA_URL": "https://media.pinglass.example/media"])
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7105, photos: 2, succeeded: 2)
        // A photo over Telegram's 5 MB limit for links is uploaded even so.
        let big = try photoIDs(job.id)[1]
        try c.execute("UPDATE generated_photos SET byte_size = 6000000 WHERE id = $1", [big])
        try pass(deliverer(deps))
        let media = try XCTUnwrap(telegram.calls.first?.media)
        XCTAssertEqual(media.count, 2)
        guard case .url(let link) = media[0] else { return XCTFail("\(media[0])") }
        XCTAssertTrue(link.hasPrefix("https://media.pinglass.example/media/generated/fixture-"), link)
        let expires = try XCTUnwrap(link.split(separator: "=").last.flatMap { Double($0) })
        XCTAssertEqual(expires - Date().timeIntervalSince1970, 86_400, accuracy: 60, "a link valid a day")
        guard case .upload = media[1] else { return XCTFail("the large photo is uploaded: \(media[1])") }
    }

    func testARefusedLinkFallsBackToTheBytesInTheSameAttempt() throws {
        let deps = try DeliveryFixtures.deps(db, telegram: telegram, env: ["PUBLIC_MEDIA_URL": "https://media.pinglass.example/media"])
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7106, photos: 3, succeeded: 3)
        telegram.errors = [.mediaURLRejected("Bad Request: failed to get HTTP URL content")]
        try DeliveryFixtures.drain(deliverer(deps))
        let calls = telegram.calls
        XCTAssertEqual(calls.map(\.method), [.mediaGroup, .mediaGroup, .message])
        XCTAssertTrue(calls[0].failed)
        XCTAssertTrue(calls[0].media.allSatisfy { if case .url = $0 { return true } else { return false } })
        XCTAssertTrue(calls[1].media.allSatisfy { if case .upload = $0 { return true } else { return false } })
        XCTAssertEqual(try rows(job.id).map(\.attempts), [1, 1], "one attempt: nothing was sent the first time")
        XCTAssertEqual(try rows(job.id).map(\.state), ["sent", "sent"])
        XCTAssertEqual(try Counters.value(c, "telegram.media_url_rejected"), 1)
    }

    func testAPhotoMissingFromStorageFailsTheRowAndAlerts() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7107, photos: 7, succeeded: 7)
        let key = try c.query("SELECT storage_key FROM generated_photos WHERE job_id = $1 LIMIT 1", [job.id])[0].requiredString("storage_key")
        try deps.media.delete(key: key)
        try pass()
        XCTAssertEqual(try rows(job.id).first?.state, "failed")
        XCTAssertTrue(try rows(job.id).first?.lastError?.contains("missing") == true)
        XCTAssertEqual(try alerts(), ["delivery-failed:job:\(job.id)"])
    }

    // MARK: classification

    func test429WaitsAtLeastRetryAfterAndPacesTheChat() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7201, photos: 7, succeeded: 7)
        telegram.errors = [.retryAfter(seconds: 5)]
        let report = try pass()
        XCTAssertEqual(report.rateLimited, 1)
        let asked = try XCTUnwrap(telegram.calls.first?.at)
        let row = try c.query("""
            SELECT state, attempts, extract(epoch FROM run_at)::float8 AS run_at,
                   (SELECT extract(epoch FROM next_send_at)::float8 FROM telegram_chat_pacing WHERE chat_id = 7201) AS paced
            FROM telegram_deliveries WHERE job_id = $1 AND batch_no = 0
            """, [job.id])[0]
        XCTAssertEqual(row.string("state"), "pending")
        XCTAssertEqual(row.int("attempts"), 0, "a 429 is not the row's failure")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(row.double("run_at")), asked + 5)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(row.double("paced")), asked + 5)
        XCTAssertGreaterThan(try XCTUnwrap(try deliverer().secondsUntilDue()), 4)
        try pass()
        XCTAssertEqual(telegram.calls.count, 1, "not before retry_after")
        XCTAssertEqual(try Counters.value(c, "telegram.rate_limited"), 1)
        try DeliveryFixtures.makeDue(c)
        try DeliveryFixtures.drain(deliverer())
        XCTAssertEqual(try rows(job.id).map(\.state), ["sent", "sent"])
    }

    /// A 429 for a chat that kept its own pace is Telegram's bot-wide flood control: every
    /// chat waits its retry_after (the global budget is paused, for every deliver process),
    /// not only that one; the round's other rows go back unsent, their attempts not counted.
    func test429ForAChatWithinItsPacePausesEveryChat() throws {
        for chat: Int64 in [7211, 7212, 7213] { try Alerts.raise(c, chatID: chat, key: "flood-\(chat)", text: "message to \(chat)") }
        telegram.errors = [.retryAfter(seconds: 5)]
        let report = try pass()
        XCTAssertEqual(telegram.calls.map(\.chatID), [7211], "no other chat was sent to into the flood")
        XCTAssertEqual(report.rateLimited, 1)
        XCTAssertEqual(report.givenBack, 2)
        XCTAssertEqual(try rows().map(\.state), ["pending", "pending", "pending"])
        XCTAssertEqual(try rows().map(\.attempts), [0, 0, 0])
        XCTAssertEqual(try Counters.value(c, "telegram.flood_paused"), 1)
        XCTAssertGreaterThan(try XCTUnwrap(try deliverer().secondsUntilDue()), 4, "the loop waits for the pause, not for nothing")
        XCTAssertEqual(try pass().budgetWaits, 1)
        XCTAssertEqual(telegram.calls.count, 1, "nobody sends before retry_after")

        try DeliveryFixtures.makeDue(c)
        try DeliveryFixtures.drain(deliverer())
        XCTAssertEqual(try rows().map(\.state), ["sent", "sent", "sent"])
    }

    /// A 429 for a chat that already got what its pace allows in a minute (a group: about
    /// 20) is that chat's own flood: it waits alone, the others go on.
    func test429ForAChatOverItsOwnPaceWaitsForThatChatOnly() throws {
        let group = DeliveryFixtures.adminChat
        for _ in 0..<20 { _ = try SweepFixtures.delivery(c, state: "sent", leaseIn: nil, chatID: group) }
        try c.execute("UPDATE telegram_deliveries SET sent_at = now() - interval '30 seconds'")
        try Alerts.raise(c, chatID: group, key: "busy", text: "one more")
        try Alerts.raise(c, chatID: 7221, key: "other", text: "to another chat")
        telegram.errors = [.retryAfter(seconds: 5)]
        let report = try pass()
        XCTAssertEqual(telegram.calls.map(\.chatID), [group, 7221])
        XCTAssertEqual(report.rateLimited, 1)
        XCTAssertEqual(report.sent, 1)
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.state), ["pending", "sent"])
        XCTAssertEqual(try Counters.value(c, "telegram.flood_paused"), 0)
    }

    /// A 429 whose retry_after ends past the row's give_up_at (its maximum age) fails the
    /// row now, alerted, rather than trying again after it (or never giving up).
    func test429PastGiveUpFailsTheRow() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7204, photos: 7, succeeded: 7)
        try c.execute("UPDATE telegram_deliveries SET give_up_at = now() + interval '3 seconds' WHERE job_id = $1", [job.id])
        telegram.errors = [.retryAfter(seconds: 30)]
        XCTAssertEqual(try pass().failed, 1)
        let album = try XCTUnwrap(try rows(job.id).first)
        XCTAssertEqual(album.state, "failed")
        XCTAssertTrue(album.lastError?.hasPrefix("gave up after 1 attempts: 429") == true, album.lastError ?? "")
        XCTAssertEqual(try alerts(), ["delivery-failed:job:\(job.id)"])
    }

    func testTransientFailuresBackOffOneFiveFifteenMinutesThenHourly() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7202, photos: 7, succeeded: 7)
        telegram.chatErrors[7202] = .transient("HTTP 502")
        let expected: [Double] = [60, 300, 900, 3600, 3600]
        for (i, wait) in expected.enumerated() {
            XCTAssertEqual(try pass().retried, 1, "attempt \(i + 1)")
            let asked = try XCTUnwrap(telegram.calls.last?.at)
            let row = try c.query("""
                SELECT state, attempts, extract(epoch FROM run_at)::float8 AS run_at, last_error FROM telegram_deliveries
                WHERE job_id = $1 AND batch_no = 0
                """, [job.id])[0]
            XCTAssertEqual(row.string("state"), "pending")
            XCTAssertEqual(row.int("attempts"), i + 1)
            XCTAssertEqual(row.string("last_error"), "HTTP 502")
            let delay = try XCTUnwrap(row.double("run_at")) - asked
            XCTAssertGreaterThanOrEqual(delay, wait * 0.9, "attempt \(i + 1)")
            XCTAssertLessThanOrEqual(delay, wait * 1.1 + 5, "attempt \(i + 1)")
            XCTAssertEqual(try pass(), Deliverer.Report(), "nothing before the backoff")
            try DeliveryFixtures.makeDue(c)
        }
        XCTAssertEqual(telegram.calls.count, 5)
        XCTAssertEqual(try rows(job.id).last?.state, "pending", "the message waits for the album")
        XCTAssertEqual(try Counters.value(c, "telegram.transient_errors"), 5)
    }

    func testTheScheduleItself() {
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 1, unit: 0.5), 60)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 2, unit: 0.5), 300)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 3, unit: 0.5), 900)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 4, unit: 0.5), 3600)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 40, unit: 0.5), 3600)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 1, unit: 0), 54, accuracy: 1e-9)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 1, unit: 1), 66, accuracy: 1e-9)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 9, unit: 0), 3240, accuracy: 1e-9)
        XCTAssertEqual(DeliveryBackoff.seconds(afterAttempt: 0, unit: 0.5), 60, "never zero")
        let random = (0..<200).map { _ in DeliveryBackoff.seconds(afterAttempt: 5) }
        XCTAssertTrue(random.allSatisfy { (3240...3960).contains($0) })
        XCTAssertGreaterThan(Set(random).count, 100, "jittered")
    }

    func testATransientFailureAtGiveUpFailsTheRowAndAlerts() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7203, photos: 7, succeeded: 7)
        try c.execute("UPDATE telegram_deliveries SET give_up_at = now() - interval '1 second' WHERE job_id = $1", [job.id])
        telegram.chatErrors[7203] = .transient("timeout")
        let report = try pass()
        XCTAssertEqual(report.failed, 1)
        let album = try XCTUnwrap(try rows(job.id).first)
        XCTAssertEqual(album.state, "failed")
        XCTAssertTrue(album.lastError?.hasPrefix("gave up after 1 attempts: timeout") == true, album.lastError ?? "")
        XCTAssertEqual(try alerts(), ["delivery-failed:job:\(job.id)"])
        XCTAssertEqual(try Counters.value(c, "telegram.failed"), 1)
    }

    /// A blocked bot (403) or an unknown chat (400) ends the row at once, with the chat's
    /// other waiting rows, one alert per job, and no more calls to that chat. Other chats go on.
    func testABlockedOrUnknownChatFailsAtOnceWithItsOtherRows() throws {
        for (chat, error) in [(Int64(7301), TelegramError.permanent(code: 403, description: "Forbidden: bot was blocked by the user")),
                              (7302, .permanent(code: 400, description: "Bad Request: chat not found"))] {
            let first = try DeliveryFixtures.finishedJob(deps, telegramID: chat, photos: 23, succeeded: 23)
            telegram.chatErrors[chat] = error
            let report = try pass()
            XCTAssertEqual(report.failed, 4, "album, album, album and message of \(chat)")
            XCTAssertEqual(try rows(first.id).map(\.state), ["failed", "failed", "failed", "failed"])
            XCTAssertEqual(telegram.calls.filter { $0.chatID == chat }.count, 1, "one call, no retry")
            XCTAssertTrue(try alerts().contains("delivery-failed:job:\(first.id)"))
        }
        XCTAssertEqual(try alerts().count, 2, "one alert per job")
        let fine = try DeliveryFixtures.finishedJob(deps, telegramID: 7303, photos: 7, succeeded: 7)
        try DeliveryFixtures.drain(deliverer())
        XCTAssertEqual(try rows(fine.id).map(\.state), ["sent", "sent"])
        XCTAssertEqual(telegram.calls.filter { [7301, 7302].contains($0.chatID) }.count, 2, "the failed chats were not asked again")
    }

    func testAFailedAlertRaisesNoAlert() throws {
        try Alerts.raise(c, chatID: DeliveryFixtures.adminChat, key: "kie-credits", text: "Kie is out of credits")
        telegram.chatErrors[DeliveryFixtures.adminChat] = .permanent(code: 403, description: "Forbidden: bot was kicked from the group chat")
        XCTAssertEqual(try pass().failed, 1)
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.state), ["failed"], "no second alert row")
    }

    /// A group that became a supergroup is followed once, its waiting rows with it. It was
    /// the admin chat: ADMIN_TELEGRAM_CHAT_ID still names the old id, so the operator is
    /// told (logged, and an alert in the new chat) to update it.
    func testAMigratedGroupIsFollowedOnce() throws {
        let old = DeliveryFixtures.adminChat, new: Int64 = -100_888
        try Alerts.raise(c, chatID: old, key: "a", text: "first")
        try Alerts.raise(c, chatID: old, key: "b", text: "second")
        telegram.chatErrors[old] = .migrated(toChatID: new)
        try DeliveryFixtures.drain(deliverer(), timeout: 60)   // a group is paced 3 s
        XCTAssertEqual(telegram.calls.map(\.chatID), [old, new, new, new])
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.state), ["sent", "sent", "sent"])
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.chatID), [new, new, new], "the waiting row moved too")
        XCTAssertEqual(try rows(where: "kind = 'alert'").map(\.attempts), [1, 1, 1])
        XCTAssertEqual(try alerts(), ["a", "b", "admin-chat-migrated"])
        let told = try XCTUnwrap(telegram.calls.last?.text)
        XCTAssertTrue(told.contains("ADMIN_TELEGRAM_CHAT_ID=\(new)"), told)

        // A chat that keeps migrating is not followed twice.
        try Alerts.raise(c, chatID: 1, key: "c", text: "third")
        telegram.chatErrors[1] = .migrated(toChatID: 2)
        telegram.chatErrors[2] = .migrated(toChatID: 3)
        XCTAssertEqual(try pass().failed, 1)
        XCTAssertEqual(telegram.calls.suffix(2).map(\.chatID), [1, 2])
    }

    func testARefusedBotTokenStopsThePassPutsTheRowBackAndAlerts() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7401, photos: 7, succeeded: 7)
        let other = try DeliveryFixtures.finishedJob(deps, telegramID: 7402, photos: 7, succeeded: 7)
        telegram.errors = [.unauthorized("Unauthorized")]
        XCTAssertThrowsError(try pass()) { XCTAssertTrue("\($0)".contains("TELEGRAM_BOT_TOKEN"), "\($0)") }
        XCTAssertEqual(telegram.calls.count, 1, "the pass stopped at the first 401")
        for job in [job, other] {
            let album = try XCTUnwrap(try rows(job.id).first)
            XCTAssertEqual(album.state, "pending")
            XCTAssertEqual(album.attempts, 0)
        }
        XCTAssertEqual(try alerts(), ["telegram-unauthorized"])
        XCTAssertEqual(try deliverer().secondsUntilDue(), 0, "due again at once, chats free")
    }

    // MARK: leases

    /// A deliverer died after claiming (maybe after sending): its lease runs out and the row
    /// is claimed again, the attempt counted (the residual risk: that batch may repeat).
    func testAnExpiredLeaseIsClaimedAgain() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7501, photos: 7, succeeded: 7)
        try c.execute("""
            UPDATE telegram_deliveries SET state = 'sending', attempts = 1, lease_token = gen_random_uuid(),
                   lease_until = now() + interval '1 minute'
            WHERE job_id = $1 AND batch_no = 0
            """, [job.id])
        try c.execute("INSERT INTO telegram_chat_pacing VALUES (7501, now() + interval '1 minute')")
        XCTAssertEqual(try pass(), Deliverer.Report(), "a live lease is left alone")
        try c.execute("UPDATE telegram_deliveries SET lease_until = now() - interval '1 second' WHERE job_id = $1 AND batch_no = 0", [job.id])
        try c.execute("UPDATE telegram_chat_pacing SET next_send_at = now() - interval '1 second'")
        let reports = try DeliveryFixtures.drain(deliverer())
        XCTAssertEqual(reports.map(\.reclaimed).reduce(0, +), 1)
        XCTAssertEqual(try rows(job.id).map(\.state), ["sent", "sent"])
        XCTAssertEqual(try rows(job.id).map(\.attempts), [2, 1])
        XCTAssertEqual(telegram.calls.map(\.method), [.mediaGroup, .message])
    }

    /// The lease was taken back while Telegram answered: the outcome is not recorded over
    /// the new owner's claim.
    func testAnOutcomeIsRecordedOnlyWithTheLease() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7502, photos: 7, succeeded: 7)
        let url = db.url
        telegram.onCall = { _, _ in
            _ = try? Connection(url).execute("UPDATE telegram_deliveries SET lease_token = gen_random_uuid() WHERE state = 'sending'")
        }
        let report = try pass()
        XCTAssertEqual(report.leaseLost, 1)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(try rows(job.id).first?.state, "sending", "left to its new owner")
        XCTAssertEqual(try rows(job.id).first?.messageIDs, [])
    }

    /// No Telegram call may start once the row is not ours any more: the lease is renewed,
    /// by compare-and-set, right before EVERY call, not once per row. Here the lease is taken
    /// over (another deliverer claimed the row) while Telegram refuses the photo link: the
    /// upload that would follow is not sent from here.
    func testTheLeaseIsCheckedAgainBeforeTheUploadThatFollowsARefusedLink() throws {
        let deps = try DeliveryFixtures.deps(db, telegram: telegram, env: ["PUBLIC_MEDIA_URL": "https://media.pinglass.example/media"])
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7511, photos: 3, succeeded: 3)
        telegram.errors = [.mediaURLRejected("Bad Request: failed to get HTTP URL content")]
        telegram.onCall = takeOverTheLease()
        let report = try pass(deliverer(deps))
        XCTAssertEqual(telegram.calls.count, 1, "only the refused link went out")
        XCTAssertEqual(report.leaseLost, 1)
        XCTAssertEqual(try rows(job.id).first?.state, "sending", "left to its new owner")
    }

    /// The same before the send to a group's new id after a migration.
    func testTheLeaseIsCheckedAgainBeforeFollowingAMigratedChat() throws {
        try Alerts.raise(c, chatID: 1, key: "moved", text: "to a supergroup")
        telegram.chatErrors[1] = .migrated(toChatID: 2)
        telegram.onCall = takeOverTheLease()
        let report = try pass()
        XCTAssertEqual(telegram.calls.map(\.chatID), [1], "nothing sent to the new id")
        XCTAssertEqual(report.leaseLost, 1)
    }

    /// Reading the photos from storage (up to ten GETs) comes before the lease is renewed,
    /// so a slow store cannot eat the lease of the call: a row taken over while its bytes
    /// were read is not sent from here.
    func testPhotosAreReadBeforeTheLeaseIsRenewed() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7512, photos: 3, succeeded: 3)
        let steal = takeOverTheLease()
        deps.media = HookedMediaStore(deps.media) { steal(.photo, 0) }
        let report = try pass()
        XCTAssertEqual(telegram.calls.count, 0, "the row was not ours when the call was due")
        XCTAssertEqual(report.leaseLost, 1)
        XCTAssertEqual(try rows(job.id).first?.state, "sending")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM rate_events")[0].int("n"), 0, "its budget slots given back")
    }

    /// Another deliverer claims the rows being sent (a new lease token), once.
    func takeOverTheLease() -> (FakeTelegram.Method, Int64) -> Void {
        let url = db.url
        let done = Locked(false)
        return { _, _ in
            guard !done.value else { return }
            done.mutate { $0 = true }
            _ = try? Connection(url).execute("UPDATE telegram_deliveries SET lease_token = gen_random_uuid() WHERE state = 'sending'")
        }
    }

    // MARK: requeue and settings

    func testAFailedDeliveryIsRequeuedByAnOperator() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7601, photos: 7, succeeded: 7)
        telegram.chatErrors[7601] = .permanent(code: 403, description: "Forbidden: bot was blocked by the user")
        try pass()
        let album = try XCTUnwrap(try rows(job.id).first)
        XCTAssertEqual(album.state, "failed")
        try c.execute("UPDATE telegram_deliveries SET give_up_at = now() - interval '1 day' WHERE id = $1", [album.id])

        guard case .requeued(let attempts, _) = try DeliveryRequeue.requeue(c, id: album.id, actor: "cli:test") else {
            return XCTFail("requeued")
        }
        XCTAssertEqual(attempts, 1, "attempts kept")
        let row = try c.query("""
            SELECT state, give_up_at > now() + interval '23 hours' AS later FROM telegram_deliveries WHERE id = $1
            """, [album.id])[0]
        XCTAssertEqual(row.string("state"), "pending")
        XCTAssertEqual(row.bool("later"), true, "give_up_at extended")
        let audit = try c.query("SELECT actor, action, target, details ->> 'attempts' AS attempts FROM admin_audit")
        XCTAssertEqual(audit.map { $0.requiredString("actor") }, ["cli:test"])
        XCTAssertEqual(audit.first?.string("action"), "delivery.requeue")
        XCTAssertEqual(audit.first?.string("target"), "telegram_delivery:\(album.id)")

        XCTAssertEqual(try DeliveryRequeue.requeue(c, id: album.id, actor: "cli:test"), .notFailed(state: "pending"))
        XCTAssertEqual(try DeliveryRequeue.requeue(c, id: 999_999, actor: "cli:test"), .notFound)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit")[0].int("n"), 1, "refusals change nothing")

        telegram.chatErrors = [:]
        try DeliveryFixtures.drain(deliverer())
        XCTAssertEqual(try rows(job.id).first?.state, "sent")
        XCTAssertEqual(try rows(job.id).first?.attempts, 2)
    }

    func testSettingsAreValidatedAndTelegramIsRequired() throws {
        let cases: [(String, (inout Deliverer.Config) -> Void)] = [
                               ("--batch-size", { $0.batchSize = 5 }),
                               ("--chat-interval", { $0.chatIntervalSeconds = 0 }),
                               ("--global-rate", { $0.globalPerSecond = 9 }),
                               ("--lease", { $0.leaseSeconds = 5 }),
                               ("--lease", { $0.leaseSeconds = 60 }),   // one 30-s call must never outlive it
                               ("--media-link-ttl", { $0.mediaLinkSeconds = 60 })]
        for (flag, change) in cases {
            var config = Deliverer.Config()
            change(&config)
            XCTAssertThrowsError(try Deliverer(deps: deps, config: config)) { XCTAssertTrue("\($0)".contains(flag), "\($0)") }
        }
        deps.telegram = nil
        XCTAssertThrowsError(try Deliverer(deps: deps)) { XCTAssertTrue("\($0)".contains("TELEGRAM_BOT_TOKEN"), "\($0)") }
    }
}

/// A media store that runs `onGet` before each read (a test's chance to act while the
/// deliverer reads the photos).
final class HookedMediaStore: MediaStore {
    let inner: any MediaStore
    let onGet: () -> Void

    init(_ inner: any MediaStore, onGet: @escaping () -> Void) {
        self.inner = inner
        self.onGet = onGet
    }

    func put(key: String, bytes: [UInt8], contentType: String) throws { try inner.put(key: key, bytes: bytes, contentType: contentType) }
    func get(key: String) throws -> [UInt8] {
        onGet()
        return try inner.get(key: key)
    }
    func delete(key: String) throws { try inner.delete(key: key) }
    func signedURL(key: String, expiresIn: Int, now: Double) -> String { inner.signedURL(key: key, expiresIn: expiresIn, now: now) }
    func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] { try inner.list(prefix: prefix, after: after, limit: limit) }
}
