"""Vocabulary of column-name classification: word sequences per label, and the words that veto them.

Kept apart from :mod:`governed_db.masking.classify` so the lists can grow without burying the logic.
"""

from __future__ import annotations

_TEXTY = frozenset({"text", "binary", "json", "unknown"})
_NUMBERY = frozenset({"text", "binary", "unknown", "int"})
_DATEY = frozenset({"date", "text", "unknown"})
_AMOUNTY = frozenset({"text", "unknown", "int", "float"})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: (label, word sequences, type categories it may have, confidence)
NAME_RULES: tuple[tuple[str, tuple[tuple[str, ...], ...], frozenset[str], float], ...] = (
    ("EMAIL", (("email",), ("e", "mail"), ("emailaddress",)), _TEXTY, 0.9),
    # a network card's hardware address identifies a device, and so its owner (an online identifier, GDPR
    # recital 30); before ADDRESS, which ``mac_address`` would otherwise match (decision 0394)
    (
        "MAC_ADDRESS",
        (("mac",), ("macaddr",), ("mac", "address"), ("mac", "addr"), ("hw", "addr"), ("hwaddr",), ("bssid",),
         ("hardware", "address")),
        _TEXTY,
        0.85,
    ),
    (
        "IP_ADDRESS",
        (("ip",), ("ipaddr",), ("ipv4",), ("ipv6",), ("remote", "addr"), ("client", "addr")),
        _TEXTY,
        0.85,
    ),
    (
        "PASSWORD",
        (("password",), ("passwd",), ("pwd",), ("pw",), ("pass", "hash"), ("passhash",), ("pin", "hash"),
         ("passphrase",), ("pass", "phrase"), ("passwort",), ("kennwort",), ("mot", "de", "passe"), ("mdp",),
         ("contrasena",), ("senha",), ("wachtwoord",), ("losenord",)),
        _TEXTY,
        0.95,
    ),
    # a PIN or passcode is a password of digits, and often stored as a number (``pin INTEGER``); a ``pin_code``
    # too (in India the name may mean a postal code: masked then as well, the safe side)
    ("PASSWORD", (("pin",), ("pin", "number"), ("passcode",), ("pass", "code")), _NUMBERY, 0.9),
    (
        "SECRET",
        (
            ("api", "key"),
            ("apikey",),
            ("secret",),
            ("access", "token"),
            ("refresh", "token"),
            ("auth", "token"),
            ("token",),
            ("private", "key"),
            ("access", "key"),
            ("session", "key"),
            ("signing", "key"),
            ("credentials",),
            ("credential",),
            # HTTP credentials: ``Basic <base64>``, ``Bearer <jwt>``
            ("auth",),
            ("authorization",),
            ("bearer",),
            ("auth", "header"),
            # a session cookie or token is a bearer credential; so are an authenticator's seed and recovery codes
            ("cookie",),
            ("cookies",),
            ("session", "token"),
            ("session", "cookie"),
            ("session", "secret"),
            ("mfa", "seed"),
            ("otp", "seed"),
            ("totp", "seed"),
            ("recovery", "code"),
            ("recovery", "codes"),
            ("backup", "codes"),
        ),
        _TEXTY,
        0.9,
    ),
    # a card's security code authenticates card-not-present payments: never shown, not even in part
    (
        "CARD_SECURITY_CODE",
        (("cvv",), ("cvc",), ("cvv2",), ("cvc2",), ("cid",), ("card", "security", "code"), ("card", "code")),
        _NUMBERY,
        0.9,
    ),
    (
        "US_SSN",
        (
            ("ssn",),
            ("ssns",),
            ("social", "security"),
            ("socialsecurity",),
            ("soc", "sec"),
            ("ss", "number"),
            ("ss", "no"),
            ("ss", "num"),
            ("ssnumber",),
        ),
        _NUMBERY,
        0.95,
    ),
    # a vehicle's identification number or licence plate names the car, and through its registration its keeper
    # (decision 0409); a bare ``vin`` (French for wine) only by its values (classify.py), a bare ``plate`` never
    (
        "VEHICLE_ID",
        (
            ("vin", "number"), ("vin", "no"), ("vin", "code"), ("vehicle", "identification", "number"),
            ("vehicle", "id", "number"), ("chassis", "number"), ("chassis", "no"), ("license", "plate"),
            ("licence", "plate"), ("licenseplate",), ("licenceplate",), ("number", "plate"), ("numberplate",),
            ("plate", "number"), ("plate", "no"), ("registration", "plate"), ("vehicle", "registration"),
            ("vehicle", "reg"), ("reg", "plate"), ("car", "plate"), ("vehicle", "plate"), ("kennzeichen",),
            ("nummernschild",), ("immatriculation",), ("matricula",), ("targa",),
        ),
        _TEXTY,
        0.85,
    ),
    (
        "NATIONAL_ID",
        (
            ("national", "id"),
            ("passport",),
            ("tax", "id"),
            ("tin",),
            ("nino",),
            ("sin",),
            ("nhs", "number"),
            ("driver", "license"),
            ("drivers", "license"),
            ("driving", "licence"),
            ("personal", "id"),
            ("id", "number"),
            ("national", "insurance"),
            ("ni", "number"),
            ("ni", "no"),
            ("ni",),
            ("driver", "licence"),
            ("drivers", "licence"),
            ("driving", "license"),
            ("driver", "license"),
            ("dl", "number"),
            ("dl", "no"),
            ("license", "number"),
            ("licence", "number"),
            ("license", "no"),
            ("licence", "no"),
            ("id", "card"),
            ("tax", "number"),
            ("tax", "no"),
            ("taxpayer",),
            # a medical record or health-insurance number identifies a patient (HIPAA's eighth identifier)
            ("mrn",),
            ("medical", "record", "number"),
            ("medical", "record", "no"),
            ("insurance", "number"),
            ("versicherungsnummer",),
            ("krankenversicherungsnummer",),
            # national numbers as European, Latin-American and Indian schemas name them (decision 0394): France's
            # NIR (numéro de sécurité sociale; not ``insee``, which names a commune's code in French open data),
            # Germany's Steuer-ID and social insurance number, Spain's NIF/NIE/DNI, Italy's codice fiscale, the
            # Netherlands' BSN, Sweden's personnummer, Brazil's CPF, Mexico's CURP, India's Aadhaar
            ("nir",),
            ("numero", "secu"),
            ("num", "secu"),
            ("securite", "sociale"),
            ("secu",),
            ("steuer", "id"),
            ("steuerid",),
            ("steuernummer",),
            ("steueridentifikationsnummer",),
            ("sozialversicherungsnummer",),
            ("svnr",),
            ("nif",),
            ("nie",),
            ("dni",),
            ("codice", "fiscale"),
            ("codicefiscale",),
            ("bsn",),
            ("personnummer",),
            ("cpf",),
            ("curp",),
            ("aadhaar",),
        ),
        _NUMBERY,
        0.85,
    ),
    (
        "CREDIT_CARD",
        (
            ("card", "number"),
            ("credit", "card"),
            ("cc", "number"),
            ("ccn",),
            ("pan",),
            ("cardnumber",),
            ("card", "no"),
        ),
        _NUMBERY,
        0.9,
    ),
    ("IBAN", (("iban",),), _NUMBERY, 0.85),
    (
        "BANK_ACCOUNT",
        (
            ("bank", "account"),
            ("account", "number"),
            ("account", "no"),
            ("acct", "number"),
            ("acct", "no"),
            ("bban",),
            ("routing",),
            ("routing", "number"),
            ("aba", "number"),
            ("sort", "code"),
            ("bsb",),
        ),
        _NUMBERY,
        0.85,
    ),
    # pay: bucketed, so ranges and averages still work but no one's exact figure is shown
    (
        "FINANCIAL",
        (
            ("salary",),
            ("salaries",),
            ("income",),
            ("wage",),
            ("wages",),
            ("compensation",),
            ("pay", "rate"),
            ("bonus",),
            ("net", "worth"),
        ),
        _AMOUNTY,
        0.8,
    ),
    # a login name identifies a person in most systems: partially masked
    (
        "USERNAME",
        (("username",), ("user", "name"), ("login",), ("login", "name"), ("screen", "name"), ("handle",)),
        _TEXTY,
        0.8,
    ),
    (
        "PHONE",
        (
            ("phone",),
            ("mobile",),
            ("telephone",),
            ("tel",),
            ("fax",),
            ("msisdn",),
            ("cellphone",),
            ("phonenumber",),
        ),
        _NUMBERY,
        0.85,
    ),
    (
        "DATE_OF_BIRTH",
        (("dob",), ("birth", "date"), ("date", "of", "birth"), ("birthday",), ("birthdate",), ("born",),
         ("birth", "day"), ("bday",), ("birthdt",), ("birth", "dt"), ("dateofbirth",), ("birth", "ts"),
         ("birth", "timestamp"), ("birth", "time"), ("birth", "datetime"), ("birthtime",),
         ("date", "naissance"), ("date", "de", "naissance"), ("naissance",), ("geburtsdatum",), ("geburtstag",),
         ("fecha", "nacimiento"), ("fecha", "de", "nacimiento"), ("nacimiento",), ("data", "nascita"),
         ("data", "di", "nascita"), ("geboortedatum",)),
        # a date of birth kept as a number (``19850312``) is one too (decision 0394)
        _DATEY | {"int"},
        0.9,
    ),
    (
        "PERSON_NAME",
        (
            ("first", "name"),
            ("last", "name"),
            ("full", "name"),
            ("given", "name"),
            ("family", "name"),
            ("middle", "name"),
            ("maiden", "name"),
            ("surname",),
            ("firstname",),
            ("lastname",),
            ("fullname",),
            ("contact", "name"),
            ("customer", "name"),
            ("display", "name"),
            ("displayname",),
            ("real", "name"),
            ("legal", "name"),
            ("holder",),
            ("holder", "name"),
            ("account", "holder"),
            ("accountholder",),
            ("cardholder",),
            ("card", "holder"),
            ("name", "on", "card"),
            ("policy", "holder"),
            ("policyholder",),
            ("beneficiary",),
            ("beneficiary", "name"),
            ("payee",),
            ("payee", "name"),
            ("payer", "name"),
            ("recipient",),
            ("recipient", "name"),
            ("sender", "name"),
            ("owner", "name"),
            ("patient", "name"),
            ("employee", "name"),
            ("guardian",),
            ("next", "of", "kin"),
            ("emergency", "contact"),
            ("spouse",),
            ("signatory",),
            ("contact",),
            ("contact", "person"),
            ("person", "name"),
            ("billing", "name"),
            ("shipping", "name"),
            ("ship", "to", "name"),
            ("bill", "to", "name"),
            ("nickname",),
            # "<a person's role> name": whoever the row is about, named (issue 12: "display_name, holder and
            # similar")
            ("client", "name"),
            ("guest", "name"),
            ("passenger", "name"),
            ("traveler", "name"),
            ("traveller", "name"),
            ("tenant", "name"),
            ("member", "name"),
            ("student", "name"),
            ("applicant", "name"),
            ("insured", "name"),
            ("author", "name"),
            ("assignee", "name"),
            ("reporter", "name"),
            ("driver", "name"),
            ("buyer", "name"),
            ("preferred", "name"),
            ("addressee",),
            # French, German, Spanish, Italian, Dutch and Portuguese schemas
            ("prenom",),
            ("nom", "complet"),
            ("nom", "de", "famille"),
            ("nom", "famille"),
            ("vorname",),
            ("nachname",),
            ("familienname",),
            ("apellido",),
            ("apellidos",),
            ("nombre", "completo"),
            ("cognome",),
            ("voornaam",),
            ("achternaam",),
            ("sobrenome",),
            ("titulaire",),
            ("inhaber",),
            ("kontoinhaber",),
        ),
        _TEXTY,
        0.85,
    ),
    (
        "ADDRESS",
        (
            ("address",),
            ("street",),
            ("addr",),
            ("postal", "code"),
            ("postcode",),
            ("zip",),
            ("zipcode",),
            ("home", "address"),
            ("adresse",),
            ("direccion",),
            ("strasse",),
            ("indirizzo",),
            ("endereco",),
            ("code", "postal"),
            ("codigo", "postal"),
            ("postleitzahl",),
            ("plz",),
            ("postal", "address"),
        ),
        _TEXTY,
        0.8,
    ),
    # where a person is (a phone's GPS fix, a delivery's drop-off point): coarsened to about 10 km, numbers stay
    # numbers (decision 0394)
    (
        "LOCATION",
        (("latitude",), ("longitude",), ("lat",), ("lng",), ("lon",), ("long", "lat"), ("lat", "long"),
         ("geohash",), ("geo", "hash"), ("coordinates",), ("coords",), ("geolocation",), ("geo", "location"),
         ("gps",), ("geopoint",), ("geo", "point"), ("latlng",), ("latlon",), ("lat", "lng"), ("lat", "lon")),
        frozenset({"text", "unknown", "float", "binary"}),
        0.8,
    ),
    # free text is where personal data hides; scanning it only replaces what the detectors find
    (
        "FREE_TEXT",
        (
            ("notes",),
            ("note",),
            ("comment",),
            ("comments",),
            ("description",),
            ("body",),
            ("message",),
            ("content",),
            ("remarks",),
            ("bio",),
            ("memo",),
            ("feedback",),
            ("payload",),
            ("metadata",),
        ),
        frozenset({"text", "json", "unknown", "binary"}),
        0.5,
    ),
)

#: words that make a sensitive-sounding name describe metadata instead of the value itself

#: words that make a sensitive-sounding name describe metadata instead of the value itself
#: words of :data:`VETO` that do not veto a label: a date is "at" or "on" a time (``born_at``, ``born_on``,
#: ``birth_time``), where ``consent_at`` is a column about the item, not the item
VETO_EXEMPT = {"DATE_OF_BIRTH": frozenset({"at", "on", "time"})}
VETO = _words(
    "count cnt num verified confirmed enabled disabled flag is has type kind format status sent opt optin "
    "opted consent length len at on time changed updated created expires expiry expired reset attempts "
    "policy template domain provider id ids hint required valid validated last4 prefix suffix mask masked "
    "visible allowed length strength version algorithm algo salt rounds method channel preference preferences "
    "role"
)
#: words in a table name saying its rows are people (so a bare ``name`` column names a person)
PERSON_TABLE_WORDS = _words(
    "user users customer customers client clients employee employees staff people person persons member "
    "members patient patients contact contacts author authors student students account accounts profile "
    "profiles owner owners applicant applicants candidate candidates subscriber subscribers guest guests "
    "passenger passengers utilisateurs utilisateur salaries salarie employes employe personnes personne adherents "
    "abonnes kunden kunde mitarbeiter benutzer personen clientes cliente empleados empleado usuarios usuario "
    "pacientes paciente contactos klanten medewerkers gebruikers utenti clienti dipendenti"
)
#: words naming a person's role in a row (``author``, ``owner``, ``created_by``): such a column holds a person's name
#: when its values look like names (checked on the sample: it may as well hold user ids, e-mails or team names)
PERSON_ROLE_WORDS = _words(
    "author authors owner owners assignee assignees reporter creator customer patient employee manager approver "
    "approvers reviewer reviewers requester requestor sender signer buyer seller tenant landlord guest member "
    "student teacher instructor rider passenger doctor physician nurse attendee organizer organiser speaker "
    "participant visitor caller witness "
    # people in CRM, support and HR rows; officers and authors are masked too, famous or not: nothing in the data
    # tells a public figure from a private person, and either is personal data (decision 0394)
    "client rep representative agent lead contact user who cc ceo cfo cto coo founder cofounder director president "
    "chair chairman supervisor recruiter interviewer therapist dentist surgeon pharmacist technician courier "
    "cashier clerk coach editor translator interviewer approver "
    "auteur responsable vendeur medecin kunde verfasser ansprechpartner autor cliente medico"
)
#: words that make a capitalised pair an organisation's or a team's name, not a person's (``Acme Corp``)
ORGANISATION_WORDS = _words(
    "inc incorporated corp corporation co company ltd limited llc llp plc gmbh ag sa sarl bv nv srl spa pty "
    "group holdings bank industries systems technologies technology tech labs lab team teams services service "
    "solutions partners foundation university college school institute department dept agency associates "
    "international global enterprises trust fund capital media studio studios store shop market support "
    "office ministry council hospital clinic center centre club society network networks software consulting "
    "logistics airlines motors energy"
)
TEXTY = _TEXTY
#: functions sqlglot leaves untyped (``Anonymous``) that only transform their arguments; any other untyped
#: function is treated as possibly reading state or tables, and as storing what it is given
PURE_FUNCTIONS = _words(
    "row_to_json to_json to_jsonb json_agg jsonb_agg json_build_object jsonb_build_object json_build_array "
    "jsonb_build_array json_object json_array json_group_array json_group_object json_quote json_insert "
    "json_set json_replace printf format quote hex unhex ifnull nullif instr char_length initcap concat_ws "
    "lpad rpad encode decode convert_to convert_from md5 sha1 sha2 sha256 to_base64 from_base64 reverse "
    "soundex translate overlay ascii chr char unicode zeroblob typeof octet_length bit_length split_part "
    "regexp_replace regexp_substr btrim json_extract jsonb_extract_path json_extract_path_text "
    "json_arrayagg json_objectagg json_each json_tree jsonb_each json_array_elements jsonb_array_elements "
    "json_array_elements_text jsonb_array_elements_text unnest generate_series string_to_array array_to_string "
    "regexp_split_to_table regexp_split_to_array array_length cardinality total"
)
#: PostgreSQL functions whose value locates or measures a relation (a file path, an OID, a size in bytes), never
#: what it holds: over constant arguments their value is not scanned as text (``base/16386/38678`` is no phone
#: number). Over a column they stay unknown functions (``pg_relation_filepath(email)`` fails exactly when the
#: value does not name a relation).
STORAGE_FUNCTIONS = _words(
    "pg_relation_filepath pg_relation_filenode pg_relation_size pg_total_relation_size pg_table_size "
    "pg_indexes_size pg_size_pretty pg_database_size pg_tablespace_size pg_column_size"
)
#: SQLite's schema pragmas (``PRAGMA table_info(t)``, ``pragma_table_info('t')``): their rows describe a table's
#: columns, indexes and keys, never what it holds, so their columns come back exactly (``cid`` is a column
#: number there, not a card security code). Over a column (``pragma_table_info(email)``) they stay unknown
#: functions: the argument counts as copied.
SCHEMA_PRAGMAS = _words(
    "table_info table_xinfo table_list index_list index_info index_xinfo foreign_key_list database_list "
    "collation_list function_list module_list pragma_list compile_options"
)
SCHEMA_PRAGMA_FUNCTIONS = frozenset(f"pragma_{p}" for p in SCHEMA_PRAGMAS)
#: the columns each schema pragma function yields (hidden argument columns included), so that a name such as
#: ``cid`` in ``SELECT name FROM pragma_table_info('t') ORDER BY cid`` is known to be the function's constant
#: column, not an unknown one judged by its name (``cid``: a card security code). Only these names are: any
#: other stays unknown (it may be an outer query's column). Decision 0228.
SCHEMA_PRAGMA_COLUMNS: dict[str, tuple[str, ...]] = {
    f"pragma_{name}": (*columns.split(), "arg", "schema")
    for name, columns in {
        "table_info": "cid name type notnull dflt_value pk",
        "table_xinfo": "cid name type notnull dflt_value pk hidden",
        "table_list": "schema name type ncol wr strict",
        "index_list": "seq name unique origin partial",
        "index_info": "seqno cid name",
        "index_xinfo": "seqno cid name desc coll key",
        "foreign_key_list": "id seq table from to on_update on_delete match",
        "database_list": "seq name file",
        "collation_list": "seq name",
        "function_list": "name builtin type enc narg flags",
        "module_list": "name",
        "pragma_list": "name",
        "compile_options": "compile_options",
    }.items()
}
