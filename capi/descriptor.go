package main

/*
#include "shim.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

type tagDescObj struct {
	entry
	t     core.TagDescriptor
	mu    sync.Mutex
	freed bool
	json  cText
}

type objDescObj struct {
	entry
	d     core.ObjectDescriptor
	mu    sync.Mutex
	freed bool
	json  cText
	key   cText
	tags  []cText // made by the first tag_json call
}

func newTagHandle(fn string, out *C.hakuban_tag_descriptor, t core.TagDescriptor) C.int32_t {
	h := handles.add(kindTagDescriptor, &tagDescObj{t: t})
	if h == 0 {
		return tableFull(fn)
	}
	*out = C.hakuban_tag_descriptor(h)
	return rcOK
}

func newObjectDescHandle(fn string, out *C.hakuban_object_descriptor, d core.ObjectDescriptor) C.int32_t {
	h := handles.add(kindObjectDescriptor, &objDescObj{d: d})
	if h == 0 {
		return tableFull(fn)
	}
	*out = C.hakuban_object_descriptor(h)
	return rcOK
}

// cBytesOf copies a NUL-terminated C string into Go memory. (A copy, not a
// view: the core may keep what it is given, and the caller's memory is only
// lent for the call.)
func cBytesOf(p *C.hakuban_cchar) []byte {
	n := int(C.strlen((*C.char)(unsafe.Pointer(p))))
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(p)), n)...)
}

//export hakuban_tag_descriptor_new
func hakuban_tag_descriptor_new(out *C.hakuban_tag_descriptor, json *C.hakuban_cchar) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_descriptor_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	if json == nil {
		return nullArg(fn, "json")
	}
	t, err := core.ParseTagDescriptor(cBytesOf(json))
	if err != nil {
		return fail(fn, err)
	}
	return newTagHandle(fn, out, t)
}

//export hakuban_tag_descriptor_json
func hakuban_tag_descriptor_json(out **C.hakuban_cchar, tag C.hakuban_tag_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_descriptor_json"
	if out == nil {
		return nullArg(fn, "out")
	}
	t, rc := lookup[tagDescObj](fn, uint64(tag), kindTagDescriptor)
	if rc != rcOK {
		return rc
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.freed {
		return badHandle(fn, uint64(tag), kindTagDescriptor)
	}
	p := t.json.get(t.t.JSON())
	if p == nil {
		return outOfMemory(fn, len(t.t.JSON()))
	}
	*out = (*C.hakuban_cchar)(p)
	return rcOK
}

//export hakuban_tag_descriptor_drop
func hakuban_tag_descriptor_drop(tag C.hakuban_tag_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	if tag == 0 {
		return rcOK
	}
	v := handles.remove(uint64(tag), kindTagDescriptor)
	if v == nil {
		return badHandle("hakuban_tag_descriptor_drop", uint64(tag), kindTagDescriptor)
	}
	t := v.(*tagDescObj)
	t.mu.Lock()
	t.freed = true
	t.json.free()
	t.mu.Unlock()
	return rcOK
}

//export hakuban_object_descriptor_new
func hakuban_object_descriptor_new(out *C.hakuban_object_descriptor, json *C.hakuban_cchar, tags *C.hakuban_cchar_cptr, tagsLen C.size_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_descriptor_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	if json == nil {
		return nullArg(fn, "json")
	}
	if tagsLen > 0 && tags == nil {
		return errorf(core.CodeInvalidArgument, fn, "tags is NULL but tags_len is %d", uint64(tagsLen))
	}
	if uint64(tagsLen) > 1<<20 {
		return errorf(core.CodeTooManyTags, fn, "%d tags", uint64(tagsLen))
	}
	var ts []core.TagDescriptor
	if tagsLen > 0 {
		ptrs := unsafe.Slice((**C.hakuban_cchar)(unsafe.Pointer(tags)), int(tagsLen))
		ts = make([]core.TagDescriptor, len(ptrs))
		for i, p := range ptrs {
			if p == nil {
				return errorf(core.CodeInvalidArgument, fn, "tags[%d] is NULL", i)
			}
			t, err := core.ParseTagDescriptor(cBytesOf(p))
			if err != nil {
				return errorf(core.ErrorCode(err), fn, "tags[%d]: %v", i, err)
			}
			ts[i] = t
		}
	}
	d, err := core.ParseObjectDescriptor(cBytesOf(json), ts...)
	if err != nil {
		return fail(fn, err)
	}
	return newObjectDescHandle(fn, out, d)
}

// objectDescText hands out one of a descriptor's strings.
func objectDescText(fn string, out **C.hakuban_cchar, h C.hakuban_object_descriptor, pick func(*objDescObj) (*cText, string, bool)) (rc C.int32_t) {
	if out == nil {
		return nullArg(fn, "out")
	}
	d, rc := lookup[objDescObj](fn, uint64(h), kindObjectDescriptor)
	if rc != rcOK {
		return rc
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.freed {
		return badHandle(fn, uint64(h), kindObjectDescriptor)
	}
	t, s, ok := pick(d)
	if !ok {
		return errorf(core.CodeInvalidArgument, fn, "index out of range: the descriptor has %d tags", d.d.NumTags())
	}
	p := t.get(s)
	if p == nil {
		return outOfMemory(fn, len(s))
	}
	*out = (*C.hakuban_cchar)(p)
	return rcOK
}

//export hakuban_object_descriptor_json
func hakuban_object_descriptor_json(out **C.hakuban_cchar, descriptor C.hakuban_object_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	return objectDescText("hakuban_object_descriptor_json", out, descriptor, func(d *objDescObj) (*cText, string, bool) {
		return &d.json, d.d.JSON(), true
	})
}

//export hakuban_object_descriptor_key
func hakuban_object_descriptor_key(out **C.hakuban_cchar, descriptor C.hakuban_object_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	return objectDescText("hakuban_object_descriptor_key", out, descriptor, func(d *objDescObj) (*cText, string, bool) {
		return &d.key, d.d.Key(), true
	})
}

//export hakuban_object_descriptor_tag_json
func hakuban_object_descriptor_tag_json(out **C.hakuban_cchar, descriptor C.hakuban_object_descriptor, index C.size_t) (rc C.int32_t) {
	defer guard(&rc)
	return objectDescText("hakuban_object_descriptor_tag_json", out, descriptor, func(d *objDescObj) (*cText, string, bool) {
		if uint64(index) >= uint64(d.d.NumTags()) {
			return nil, "", false
		}
		if d.tags == nil { // most descriptors (one per tag event) never need it
			d.tags = make([]cText, d.d.NumTags())
		}
		return &d.tags[index], d.d.Tag(int(index)).JSON(), true
	})
}

//export hakuban_object_descriptor_tag_count
func hakuban_object_descriptor_tag_count(out *C.size_t, descriptor C.hakuban_object_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_descriptor_tag_count"
	if out == nil {
		return nullArg(fn, "out")
	}
	d, rc := lookup[objDescObj](fn, uint64(descriptor), kindObjectDescriptor)
	if rc != rcOK {
		return rc
	}
	*out = C.size_t(d.d.NumTags())
	return rcOK
}

//export hakuban_object_descriptor_drop
func hakuban_object_descriptor_drop(descriptor C.hakuban_object_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	if descriptor == 0 {
		return rcOK
	}
	v := handles.remove(uint64(descriptor), kindObjectDescriptor)
	if v == nil {
		return badHandle("hakuban_object_descriptor_drop", uint64(descriptor), kindObjectDescriptor)
	}
	d := v.(*objDescObj)
	d.mu.Lock()
	d.freed = true
	d.json.free()
	d.key.free()
	for i := range d.tags {
		d.tags[i].free()
	}
	d.mu.Unlock()
	return rcOK
}
