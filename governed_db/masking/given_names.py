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

__all__ = ["GIVEN_NAMES", "NOT_SURNAMES"]
