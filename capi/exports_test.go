package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryExportRecovers checks statically that every //export function
// starts with `defer guard(&rc)` (or guardVoid): a panic escaping an export
// would kill the host process.
func TestEveryExportRecovers(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Doc == nil || !hasExport(fd.Doc) {
				continue
			}
			n++
			if !startsWithGuard(fd) {
				t.Errorf("%s: //export %s does not start with defer guard(&rc) / guardVoid()", fset.Position(fd.Pos()), fd.Name.Name)
			}
		}
	}
	if n < 70 {
		t.Fatalf("found only %d exports", n)
	}
}

func hasExport(g *ast.CommentGroup) bool {
	for _, c := range g.List {
		if strings.HasPrefix(c.Text, "//export ") {
			return true
		}
	}
	return false
}

func startsWithGuard(fd *ast.FuncDecl) bool {
	if fd.Body == nil || len(fd.Body.List) == 0 {
		return false
	}
	ds, ok := fd.Body.List[0].(*ast.DeferStmt)
	if !ok {
		return false
	}
	id, ok := ds.Call.Fun.(*ast.Ident)
	return ok && (id.Name == "guard" || id.Name == "guardVoid")
}
