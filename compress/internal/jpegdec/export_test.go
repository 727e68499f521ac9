package jpegdec

// TookGuess counts the verifications a guess finished (VerifyConcurrent).
var TookGuess = &tookGuess
