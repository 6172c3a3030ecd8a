"""Given names, for finding people's names without a named-entity model (decision 0394).

A capitalised pair whose first word is a common given name (``Jean Dupont``, ``María Fernández``, ``Kenji
Nakamura``) is a person's name far more often than anything else; Presidio calls such a list a deny-list
recognizer. The list is small on purpose: names that are also common words, months, places or brands (``Will``,
``Mark``, ``May``, ``June``, ``Rose``, ``Paris``, ``Georgia``, ``Jordan``, ``Victoria``, ``Chase``...) are left
out, so that ``Will Power`` and ``Victoria Station`` stay as written. A name not in the list is not found in prose
(a column of them is still labelled by its name or its role).
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GIVEN_NAMES = _words(
    # English
    "aaron abigail adam adrian aidan alan albert alex alexander alexandra alice alison amanda amber amelia amy "
    "andrew angela anna anne anthony arthur ashley barbara benjamin beth betty bob brandon brenda brian bruce "
    "carl carol caroline catherine charles charlie chloe christina christine christopher claire craig cynthia "
    "daniel david deborah debra dennis derek diana donald donna dorothy douglas dylan edward eleanor elizabeth "
    "ellen emily emma eric erin ethan evelyn frank gary george gerald gloria grace gregory hannah harold harry "
    "heather heidi helen henry isaac isabella jacob james jane janet jason jeffrey jennifer jeremy jessica joan "
    "joe john jonathan joseph joshua joyce judith judy julia julie justin karen katherine kathleen keith kelly "
    "kenneth kevin kimberly kyle larry laura lauren lawrence linda lisa logan louise lucy madeline margaret "
    "maria marie marilyn martha mary matthew megan melissa michael michelle nancy natalie nathan nicholas "
    "nicole noah oliver olivia pamela patricia patrick paul peggy peter philip rachel ralph rebecca richard "
    "robert roger ronald ruth ryan samantha samuel sandra sara sarah scott sean sharon shirley sophia stephanie "
    "stephen steven susan teresa thomas timothy tyler victor vincent walter wayne william zachary "
    "mallory niaj rupert sybil trent judy liam ava mia lucas sofia mateo amara yasmin zoe zoë ingrid "
    # French
    "agnes agnès amelie amélie antoine aurelie aurélie benoit benoît camille cecile cécile celine céline "
    "chloé christophe clement clément damien delphine elodie élodie emilie émilie etienne étienne fabien "
    "florian francois françois frederic frédéric genevieve geneviève guillaume helene hélène ines inès "
    "jacques jean jerome jérôme julien laurent lea léa leon léon lucie manon margaux mathieu maxime nathalie "
    "nicolas olivier pascal pierre quentin remi rémi sebastien sébastien severine séverine sophie sylvie "
    "thibault thierry valerie valérie yann yves"
    # German, Dutch, Nordic
    " andreas anke bernd birgit björn bjorn dieter dirk eva frauke friedrich gerhard gunter günter hans "
    "heinz helga ingeborg jens joachim jorg jörg jurgen jürgen karl katrin klaus lars lena lukas maik "
    "manfred matthias monika niklas ole petra rainer ralf sabine sigrid soren søren stefan sven thorsten "
    "torsten ulrich ursula uwe volker wolfgang annika astrid freja henrik nils pieter sander sanne willem "
    # Spanish, Portuguese, Italian
    " alejandro alejandra alvaro álvaro ana andres andrés antonio beatriz carlos carmen diego dolores "
    "eduardo elena enrique fernando francisco gonzalo guillermo ignacio isabel javier jorge jose josé juan "
    "lucia lucía luis manuel marcos maría marta miguel pablo pedro rafael raquel ricardo rocio rocío sergio "
    "teresa joao joão gabriela rodrigo thiago alessandro alessia chiara davide federico francesca giovanni "
    "giulia giuseppe lorenzo luca marco matteo paola riccardo roberto simone stefano valentina"
    # Polish, Czech, Slavic
    " agnieszka anna andrzej ewa jakub katarzyna krzysztof lukasz łukasz magdalena malgorzata małgorzata "
    "marcin michal michał piotr tomasz wojciech zofia ivan igor olga sergei sergey dmitri dmitry natasha "
    "tatiana vladimir yuri jiri jiří petr"
    # Arabic, Turkish, Persian, South Asian, East Asian, African
    " ahmed ali amir aisha fatima hassan hussein ibrahim khalid layla mohamed mohammed muhammad mustafa nour "
    "omar rania samir yusuf zainab mehmet emre elif ayse ayşe reza arjun amit anil deepak divya kavya lakshmi "
    "meera neha pooja priya rahul rajesh ravi rohan sanjay sunita vikram wei chen jing li ming xiao yan hiroshi "
    "kenji takeshi yuki haruto sakura min-jun seo-yeon ji-ho chidi chinedu ngozi oluwaseun kwame amina"
    # more of West and East Africa, Mesoamerica, South-East and East Asia, South Asia, the Middle East (decision
    # 0409): names a person is far more often than anything else
    " adebayo adewale ayodele babajide chiamaka chukwuemeka emeka folake ifeoma kehinde nnamdi obinna olufemi "
    "oluwadamilare oluwatobi temitope tunde uchenna yetunde abena akosua kofi kwabena ama esi baraka "
    "wanjiru njeri otieno achieng wambui zawadi thandiwe sipho thabo lerato nomvula xochitl itzel citlali "
    "yaretzi nayeli tenoch cuauhtemoc ximena "
    "xiaoming xiaoyu jianguo zhiwei yuxuan zihan haoran yichen jiayi xinyi wenjun "
    "jae-won seo-jun ji-woo min-seo hye-jin soo-ah eun-ji taeyang "
    "aarav aditya ananya arnav ishaan lakshmi saanvi vihaan kiran suresh ramesh venkatesh murugan "
    "karthik senthil prakash anjali shreya tanvi "
    "bahar dariush farhad golnaz mahsa parisa shirin babak arash "
    "oguz burak cem ebru gizem tugba yasemin "
    "abdullah abdul youssef yousef mariam maryam noor nadia tariq hamza bilal zaid "
    "siosaia mele sione tupou"
)
#: surnames, mostly of families far from the given-name list's cultures (``Nguyen``, ``Adeyemi``, ``Ramírez``), that
#: a column of people's names may hold before any listed given name: a value holding one counts as a name as one
#: holding a given name does (decision 0409). Kept to family names that are not words, places or brands.
SURNAMES = _words(
    "nguyen tran pham hoang huynh phan dang bui ngo duong truong vo vu "
    "wang zhang liu huang zhao zhou xu zhu guo luo zheng xie tang "
    "choi jung kang cho yoon jang shin kwon hwang "
    "tanaka suzuki takahashi watanabe ito yamamoto nakamura kobayashi yoshida yamada sasaki matsumoto inoue "
    "adeyemi adebayo okafor okonkwo okeke eze nwosu obi ogunleye oyelaran balogun afolabi mensah asante "
    "boateng owusu osei kamau mwangi otieno wanjiku ndlovu dlamini nkosi khumalo mbeki "
    "ramirez ramírez rodriguez rodríguez gonzalez gonzález hernandez hernández lopez lópez martinez martínez "
    "sanchez sánchez perez pérez gomez gómez fernandez fernández garcia garcía diaz díaz torres flores "
    "alvarez álvarez castillo jimenez jiménez moreno romero mendoza vargas ortiz gutierrez gutiérrez "
    "chavez chávez ramos reyes ruiz herrera aguilar cruz tzompa cuauhtli "
    "smith johnson williams jones miller davis wilson anderson taylor thomas moore jackson thompson "
    "harris clark lewis robinson allen wright scott adams nelson "
    "mitchell roberts phillips evans edwards collins stewart morris murphy "
    "rogers morgan peterson kelly howard richardson cox "
    "müller mueller schmidt fischer meyer wagner becker schulz hoffmann koch "
    "dupont durand dubois leroy moreau lefebvre lefèvre laurent girard mercier "
    "rossi russo esposito bianchi romano ricci greco "
    "kowalski kowalska nowak wiśniewski wisniewski wójcik wojcik kamiński kaminski "
    "ivanov ivanova smirnov smirnova petrov petrova popov popova "
    "patel sharma singh kumar gupta reddy iyer nair menon rao pillai chatterjee banerjee mukherjee "
    "khan hussain rahman ahmed ali hosseini rezaei mohammadi karimi yilmaz kaya demir şahin sahin çelik celik "
    "yildiz öztürk ozturk aydin"
)
#: words that end a capitalised pair without it being a person's name (``Grace Street``, ``Emma Stone Award``)
NOT_SURNAMES = _words(
    "street st road rd avenue ave lane ln boulevard blvd drive way place square park station airport hospital "
    "clinic bridge river lake mountain mount county city town hall centre center building tower house school "
    "college university academy church cathedral museum library hotel restaurant cafe bar team group award "
    "prize foundation fund trust company inc ltd llc corp gmbh project program programme day week month year "
    "period line lines technique method effect syndrome disease law theorem principle test scale index model "
    "protocol algorithm paradox number code series edition version release beta alpha mode plan tier "
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december the and or of for to in on at with from by is was will"
)

__all__ = ["GIVEN_NAMES", "NOT_SURNAMES", "SURNAMES"]
