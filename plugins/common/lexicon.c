/*
 * thinkgate — the built-in skill lexicon (see skills.h).
 *
 * One row per skill keyword: the keyword, its domain and the stems that
 * reveal it, '|'-separated.  A stem matches at the start of a word,
 * case-insensitively ("spectr" matches "Spectroscopy").  tools/
 * skill_profile.py reads the rows between the two marker comments
 * straight out of this file, so the profile tool and the plugin annotate
 * with the same table: keep one row per line, in this shape.
 */
#include "skills.h"

/* lexicon rows begin */
const tg_lexicon_row_t  tg_lexicon[] = {
    { "quantum mechanics", "physics",
      "quantum|eigen|hamiltonian|wave function|wavefunction|spin|qubit|"
      "commutator|operator|uncertainty|orbital angular|bra|ket|pauli" },
    { "electromagnetism", "physics",
      "electric|magnetic|charge|capacitor|inductor|voltage|current|"
      "coulomb|dipole|maxwell|electromagnetic|conductor|field" },
    { "relativity", "physics",
      "relativ|lorentz|speed of light|rest mass|rest frame|time dilation|"
      "four-momentum|invariant mass" },
    { "astrophysics", "physics",
      "star|stellar|planet|galax|telescope|solar|exoplanet|orbit|"
      "astronom|cosmolog|redshift|luminosity|quasar|black hole" },
    { "optics", "physics",
      "optic|lens|refract|diffraction|interferen|wavelength|polariz|"
      "laser|photon|mirror" },
    { "thermodynamics", "physics",
      "thermodynamic|entropy|temperature|heat|isotherm|adiabatic|"
      "boltzmann|partition function|ideal gas|enthalpy" },
    { "nuclear and particle physics", "physics",
      "nucle|decay|neutrino|boson|quark|lepton|muon|pion|higgs|isotope|"
      "half-life|radioactiv|collider|fermion" },
    { "classical mechanics", "physics",
      "velocity|acceleration|momentum|friction|pendulum|oscillat|"
      "kinetic energy|lagrangian|rotation|torque|mass m" },
    { "organic chemistry", "chemistry",
      "organic|alkene|alkyne|alcohol|ketone|aldehyde|ester|benzene|"
      "aromatic|carbonyl|grignard|diene|methyl|ethyl|hydroxy|amine|"
      "acid chloride|cyclohex|phenyl|bromide" },
    { "reaction mechanisms", "chemistry",
      "reaction|reacted|treated with|product|reagent|mechanism|yield|"
      "synthesis|substitution|elimination|catalyst|heated" },
    { "spectroscopy", "chemistry",
      "nmr|spectr|infrared|ir |mass spectrometry|peak|chemical shift|"
      "absorption|emission|ppm" },
    { "stereochemistry", "chemistry",
      "stereo|chiral|enantiomer|diastereomer|isomer|racemic|optical "
      "activity|symmetry|point group" },
    { "physical chemistry", "chemistry",
      "equilibrium|kinetic|rate constant|molar|concentration|ph |buffer|"
      "titrat|solubility|electrochem|redox|oxidation|gibbs|dissociation" },
    { "inorganic chemistry", "chemistry",
      "metal|complex|ligand|coordination|transition metal|crystal|"
      "oxide|salt|ion" },
    { "molecular biology", "biology",
      "dna|rna|gene|protein|transcription|translation|plasmid|pcr|"
      "sequenc|mutation|crispr|codon|promoter|enzyme" },
    { "genetics", "biology",
      "genetic|allele|heredit|chromosom|genotype|phenotype|mendel|"
      "recessive|dominant|inherit|locus|genome" },
    { "cell biology", "biology",
      "cell|membrane|mitochondri|receptor|signaling|apoptosis|"
      "organelle|cytoplasm|nucleus|stem cell" },
    { "immunology and microbiology", "biology",
      "immun|antibod|antigen|virus|viral|bacteri|pathogen|infection|"
      "vaccine|t cell|microb" },
    { "algebra", "mathematics",
      "polynomial|equation|root|real number|logarithm|log|system of|"
      "variable|complex number|quadratic" },
    { "geometry", "mathematics",
      "triangle|circle|angle|polygon|hexagon|rectangle|square|tangent|"
      "perpendicular|area|radius|diagonal|sphere|torus|coordinate plane" },
    { "number theory", "mathematics",
      "integer|prime|divisib|divisor|remainder|modulo|digit|gcd|"
      "relatively prime|factor" },
    { "combinatorics", "mathematics",
      "how many|number of ways|arrangement|permutation|combination|"
      "choose|paths|grid|subset|colored" },
    { "probability", "mathematics",
      "probability|random|expected|chance|dice|coin" },
    { NULL, NULL, NULL }
};
/* lexicon rows end */

const size_t  tg_lexicon_size = sizeof(tg_lexicon) / sizeof(tg_lexicon[0]) - 1;
