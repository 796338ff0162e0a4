package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// index is an NV index as the TPM reports it: absent, or its public area
// and current name (which changes when it is first written or locked, so
// it is read again before every command that names it).
type index struct {
	handle  tpm2.TPMHandle
	defined bool
	pub     tpm2.TPMSNVPublic
	name    tpm2.TPM2BName
}

// readPublic returns h's public area, or an undefined index.
func (c *Counter) readPublic(h tpm2.TPMHandle) (index, error) {
	rsp, err := do(c, "NV_ReadPublic", func() (*tpm2.NVReadPublicResponse, error) {
		return tpm2.NVReadPublic{NVIndex: h}.Execute(c.tpm)
	})
	if errors.Is(err, tpm2.TPMRCHandle) {
		return index{handle: h}, nil
	}
	if err != nil {
		return index{}, err
	}
	pub, err := rsp.NVPublic.Contents()
	if err != nil {
		return index{}, fmt.Errorf("tpm NV_ReadPublic %#x: %w", uint32(h), err)
	}
	return index{handle: h, defined: true, pub: *pub, name: rsp.NVName}, nil
}

// define creates an NV index under the owner hierarchy with an empty
// authorisation value. The owner authorisation goes in a password session:
// one command per attempt, nothing for a retry or a power cut to leave
// behind in the TPM's session slots. Defining happens once per component,
// normally at the factory.
func (c *Counter) define(pub tpm2.TPMSNVPublic) error {
	_, err := do(c, "NV_DefineSpace", func() (*tpm2.NVDefineSpaceResponse, error) {
		return tpm2.NVDefineSpace{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(c.opts.OwnerAuth)},
			PublicInfo: tpm2.New2B(pub),
		}.Execute(c.tpm)
	})
	return err
}

// self authorises a command on ix with ix's own (empty) authorisation.
func self(ix index) tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: ix.handle, Name: ix.name, Auth: tpm2.PasswordAuth(nil)}
}

func named(ix index) tpm2.NamedHandle {
	return tpm2.NamedHandle{Handle: ix.handle, Name: ix.name}
}

func (c *Counter) increment(ix index) error {
	_, err := do(c, "NV_Increment", func() (*tpm2.NVIncrementResponse, error) {
		return tpm2.NVIncrement{AuthHandle: self(ix), NVIndex: named(ix)}.Execute(c.tpm)
	})
	return err
}

func (c *Counter) read(ix index) ([]byte, error) {
	rsp, err := do(c, "NV_Read", func() (*tpm2.NVReadResponse, error) {
		return tpm2.NVRead{AuthHandle: self(ix), NVIndex: named(ix), Size: ix.pub.DataSize}.Execute(c.tpm)
	})
	if err != nil {
		return nil, err
	}
	if len(rsp.Data.Buffer) != int(ix.pub.DataSize) {
		return nil, fmt.Errorf("tpm NV_Read %#x: %d bytes, want %d", uint32(ix.handle), len(rsp.Data.Buffer), ix.pub.DataSize)
	}
	return rsp.Data.Buffer, nil
}

func (c *Counter) readUint64(ix index) (uint64, error) {
	b, err := c.read(ix)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (c *Counter) write(ix index, data []byte) error {
	_, err := do(c, "NV_Write", func() (*tpm2.NVWriteResponse, error) {
		return tpm2.NVWrite{AuthHandle: self(ix), NVIndex: named(ix),
			Data: tpm2.TPM2BMaxNVBuffer{Buffer: data}}.Execute(c.tpm)
	})
	return err
}

func (c *Counter) writeLock(ix index) error {
	_, err := do(c, "NV_WriteLock", func() (*tpm2.NVWriteLockResponse, error) {
		return tpm2.NVWriteLock{AuthHandle: self(ix), NVIndex: named(ix)}.Execute(c.tpm)
	})
	return err
}
