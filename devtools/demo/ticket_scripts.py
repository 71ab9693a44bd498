"""What the demo's support tickets say: the staff who answer, the scripts customers and staff follow per category, and
the ratings customers leave (devtools/demo/tickets.py plays them)."""

from dataclasses import dataclass

from support.models import TicketCategory


@dataclass(frozen=True)
class Staff:
    user_id: str
    username: str


STAFF = (
    Staff("1610000000000000001", "jonas.modready"),
    Staff("1610000000000000002", "priya_support"),
    Staff("1610000000000000003", "sam.modready"),
)


@dataclass(frozen=True)
class Script:
    """What a ticket is about. `lines` alternate from staff's first answer; `server` needs a subscription."""

    category: str
    subject: str
    description: str
    lines: tuple[str, ...]
    close_reason: str
    server: bool = True
    attachment: tuple[str, bytes] | None = None


SCRIPTS = (
    Script(
        TicketCategory.TECHNICAL,
        "Lag spikes every evening",
        "Since Tuesday the TPS drops to about 8 around 20:00 when 12 of us are online. Modpack is ATM9. "
        "Spark profile attached.",
        (
            "Thanks for the profile: chunk generation in the new area eats the CPU. Pre-generate it with Chunky "
            "(radius 3000) and I've moved your server to a less busy node.",
            "Ran Chunky overnight, way smoother tonight. Thanks!",
        ),
        "Node moved, pre-generation advised",
        attachment=("spark-profile.txt", b"Spark profile (60 s)\nServer thread: 96.4%\n  ChunkGenerator 71.2%\n"),
    ),
    Script(
        TicketCategory.SETUP,
        "Forge modpack starts as vanilla",
        "I uploaded the CurseForge zip of our modpack, but the server starts plain vanilla.",
        (
            "The CurseForge zip is the client pack. Set Software to Forge 47.2 under Settings, then upload the "
            "*server* pack from the modpack's Files tab.",
            "That was it, it's running with all mods now.",
        ),
        "Client pack uploaded instead of the server pack",
    ),
    Script(
        TicketCategory.TECHNICAL,
        "Crash on start after adding Create",
        "Added Create 0.5.1 and now the server crashes on start. Crash report attached.",
        (
            "Create 0.5.1 needs Flywheel 0.6.10 and you have 0.6.8 in /mods. Update Flywheel and it starts.",
            "Updated, started fine. Thanks for the quick look!",
        ),
        "Mod version mismatch (Flywheel)",
        attachment=(
            "crash-2024-report.txt",
            b"---- Minecraft Crash Report ----\njava.lang.NoSuchMethodError: 'void com.jozufozu.flywheel...'\n",
        ),
    ),
    Script(
        TicketCategory.SETUP,
        "Roll back to last night's backup",
        "Someone griefed our spawn. Can we roll back to the 03:00 backup without losing the nether?",
        (
            "Yes: Backups > 03:00 > Restore, and tick only 'world' so the nether stays. The server stops for about "
            "two minutes. Want me to do it for you?",
            "Yes please!",
            "Done, spawn is back as of 03:00 and the nether is untouched.",
            "You're a lifesaver.",
        ),
        "Backup restored (overworld only)",
    ),
    Script(
        TicketCategory.BILLING,
        "Invoices with our VAT number",
        "We're a small gaming association. Can the invoices show our VAT ID?",
        (
            "Sure: add it under Billing > Tax ID and every invoice from then on shows it. I've reissued your last "
            "invoice with it too.",
            "Perfect, thank you.",
        ),
        "Tax ID added, last invoice reissued",
    ),
    Script(
        TicketCategory.BILLING,
        "Monthly to yearly: is it prorated?",
        "If I switch from monthly to the yearly plan mid-month, do I lose the rest of this month?",
        (
            "No: the unused days of this month are credited on the first yearly invoice.",
            "Great, switching now.",
        ),
        "Question answered",
    ),
    Script(
        TicketCategory.PURCHASE,
        "Which plan for 20 players with mods?",
        "We're 20 friends on a modded 1.20.1 pack (about 150 mods). Starter or Pro?",
        (
            "Pro: 150 mods for 20 players want the 8 GB; Starter's 4 GB would stutter. You can try it 14 days first.",
            "Thanks, we'll start the trial this weekend.",
        ),
        "Plan advice given",
        server=False,
    ),
    Script(
        TicketCategory.TECHNICAL,
        "Connection timed out since this morning",
        "Nobody can join since this morning, the panel says the server is online.",
        (
            "Sorry about that: your server moved to a new node last night and its port is now 25571. The panel "
            "shows the new address at the top.",
            "We're all in again.",
        ),
        "Port changed after the node migration",
    ),
    Script(
        TicketCategory.OTHER,
        "Backups to our own Google Drive?",
        "Is there a way to push the daily backups to a Google Drive folder automatically?",
        (
            "Not built in yet. You can fetch them over SFTP with rclone on a schedule; I've added your vote to the "
            "feature request.",
            "ok, rclone it is",
        ),
        "Workaround given, feature request noted",
    ),
    Script(
        TicketCategory.SETUP,
        "Whitelist doesn't keep people out",
        "I added my friends with /whitelist add and turned it on, but strangers still join.",
        (
            "online-mode is off in your server.properties, so anyone can join under any name. Turn it on and "
            "restart; the whitelist then checks real accounts.",
            "Works now, thanks.",
        ),
        "online-mode was off",
    ),
    Script(
        TicketCategory.PURCHASE,
        "Can I move my world from another host?",
        "Thinking of switching to ModReady. Can I bring my 6 GB world from my current host?",
        (
            "Yes: upload it over SFTP or send us a download link and we import it for free during your trial.",
            "Nice, I'll start a trial then.",
        ),
        "Migration explained",
        server=False,
    ),
    Script(
        TicketCategory.BILLING,
        "Card expires this month",
        "My card expires at the end of the month. Where do I change it before the renewal?",
        (
            "Billing > Payment method opens the payment portal: add the new card there and make it the default.",
            "Done, thanks!",
        ),
        "Payment method updated by the customer",
    ),
)

# What customers write with a rating (1-5), if anything.
RATINGS = (
    (5, "Fast and friendly, thanks!"),
    (5, ""),
    (4, "Fixed, though it took a while to get an answer."),
    (5, "Great support as always"),
    (3, "Solved in the end, but I had to explain it twice."),
    (4, ""),
)
