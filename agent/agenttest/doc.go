// Package agenttest holds fakes for testing the agent engine on a simulated
// device: a bootloader with U-Boot boot-counting semantics whose environment
// lives in a file, file-backed A/B slots with a page-cache model, a state
// directory, a fake update server and a flaky fetcher — and an Injector
// that cuts power at any write point.
//
// Every write the simulated device makes (journal and counter files,
// trusted-metadata refreshes, slot write chunks and syncs, bootloader
// environment saves, including the bootloader's own at boot) first calls
// Injector.Point. A power cut at point N makes that write not happen and
// every later operation fail with ErrPowerCut; slot data written but not
// yet synced survives only up to a random byte offset, and an interrupted
// atomic file write may leave a partial temporary file behind. The test then
// "reboots": Device.PowerOn runs the bootloader logic on the files, and a
// fresh engine starts from whatever reached the disk.
package agenttest
