"""Names, places and prices the generator draws from, per country.

Plain data: no randomness and no I/O here.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Anna",
    "Lukas",
    "Marie",
    "Jonas",
    "Sophie",
    "Felix",
    "Emma",
    "Paul",
    "Lena",
    "Noah",
    "Clara",
    "Elias",
    "Hannah",
    "Leon",
    "Julia",
    "Finn",
    "Laura",
    "Ben",
    "Mia",
    "David",
    "Sarah",
    "Tom",
    "Olivia",
    "James",
    "Chloe",
    "Louis",
    "Camille",
    "Daan",
    "Sanne",
    "Oliver",
    "Amelia",
    "Jack",
    "Emily",
    "Liam",
    "Ava",
    "Ethan",
    "Zoe",
    "Matteo",
    "Nina",
    "Jan",
)
LAST_NAMES = (
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Krause",
    "Martin",
    "Bernard",
    "Dubois",
    "Laurent",
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Johnson",
    "Miller",
    "Davis",
    "Garcia",
    "Huber",
    "Gruber",
    "Keller",
    "Brunner",
)
COMPANY_SUFFIX = {
    "DE": "GmbH",
    "AT": "GmbH",
    "FR": "SARL",
    "NL": "B.V.",
    "GB": "Ltd",
    "US": "Inc.",
    "CH": "AG",
}
COUNTRY_WEIGHTS = (("DE", 40), ("AT", 8), ("FR", 12), ("NL", 10), ("GB", 12), ("US", 12), ("CH", 6))
CURRENCY = {
    "DE": "EUR",
    "AT": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "GB": "GBP",
    "US": "USD",
    "CH": "CHF",
}
# Fixed rates from EUR list prices to the order currency.
RATE_PER_EUR = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08, "CHF": 0.96}
PHONE_PREFIX = {
    "DE": "+49",
    "AT": "+43",
    "FR": "+33",
    "NL": "+31",
    "GB": "+44",
    "US": "+1",
    "CH": "+41",
}
CITIES = {
    "DE": ("Berlin", "Hamburg", "Muenchen", "Koeln", "Frankfurt", "Leipzig", "Dresden", "Bremen"),
    "AT": ("Wien", "Graz", "Linz", "Salzburg", "Innsbruck"),
    "FR": ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille"),
    "NL": ("Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen"),
    "GB": ("London", "Manchester", "Bristol", "Leeds", "Glasgow"),
    "US": ("New York", "Boston", "Chicago", "Austin", "Seattle", "Denver"),
    "CH": ("Zuerich", "Basel", "Bern", "Luzern", "Lausanne"),
}
STREETS = {
    "DE": ("Hauptstrasse", "Bahnhofstrasse", "Gartenweg", "Lindenallee", "Schulstrasse"),
    "AT": ("Ringstrasse", "Mariahilfer Strasse", "Landstrasse", "Kirchgasse"),
    "FR": ("Rue de la Paix", "Avenue Victor Hugo", "Rue du Moulin", "Boulevard Voltaire"),
    "NL": ("Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsplein"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road"),
    "US": ("Main Street", "Oak Avenue", "Maple Drive", "Park Avenue"),
    "CH": ("Bahnhofstrasse", "Seestrasse", "Dorfstrasse", "Kirchweg"),
}
POSTCODE_DIGITS = {"DE": 5, "AT": 4, "FR": 5, "NL": 4, "GB": 0, "US": 5, "CH": 4}
EMAIL_DOMAINS = (
    "example.com",
    "example.de",
    "example.fr",
    "example.nl",
    "example.org",
    "mail.example",
)
PRODUCT_WORDS = (
    "Desk Lamp",
    "Office Chair",
    "Notebook",
    "Standing Desk",
    "Monitor Arm",
    "Cable Tray",
    "Keyboard",
    "Headset",
    "Webcam",
    "Whiteboard",
    "Filing Cabinet",
    "Coffee Machine",
    "Water Bottle",
    "Backpack",
    "Label Printer",
    "Shelf",
    "Plant Pot",
    "Desk Mat",
)
PRODUCT_ADJECTIVES = ("Basic", "Pro", "Compact", "Deluxe", "Eco", "Classic", "Smart", "Mini")
PRICE_POINTS = (
    490,
    990,
    1490,
    1990,
    2490,
    2990,
    3990,
    4990,
    7990,
    9990,
    14900,
    19900,
    29900,
    49900,
)


def postcode(country: str, number: int) -> str:
    """A postcode in the country's format built from `number`."""
    digits = POSTCODE_DIGITS[country]
    if digits == 0:
        letters = "ABCDEFGHJKLMNPRSTUWXYZ"
        area = f"{letters[number % 22]}{letters[(number // 22) % 22]}{number % 9 + 1}"
        return f"{area} {number % 10}{letters[(number // 7) % 22]}{letters[(number // 3) % 22]}"
    low = 10 ** (digits - 1)
    return str(low + number % (9 * low))
